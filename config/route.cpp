#include "config/route.hpp"

#include <optional>
#include <utility>

#include "core/error.hpp"

namespace ib::config {

namespace {

/// `provider/model` with a configured provider: that provider alone, the rest of the name as the
/// upstream model (which may hold slashes itself).
std::optional<route> direct_route(const config& cfg, std::string_view model) {
  const auto slash = model.find('/');
  if (slash == std::string_view::npos || slash + 1 >= model.size()
      || cfg.find_provider(model.substr(0, slash)) == nullptr) {
    return std::nullopt;
  }
  route r;
  r.plan.push_back(
      tier_entry{std::string(model.substr(0, slash)), std::string(model.substr(slash + 1))});
  return r;
}

}  // namespace

result<route> resolve_route(const config& cfg, std::string_view model) {
  if (const auto* t = cfg.find_tier(model)) {
    return route{t->name, t->entries};
  }
  if (auto r = direct_route(cfg, model)) {
    return std::move(*r);
  }
  std::string tiers;
  for (const auto& t : cfg.tiers) {
    tiers += tiers.empty() ? "" : ", ";
    tiers += t.name;
  }
  std::string providers;
  for (const auto& p : cfg.providers) {
    providers += providers.empty() ? "" : ", ";
    providers += p.name;
  }
  return error{errc::not_found,
               "The model '" + std::string(model) + "' does not exist. Use a tier (" + tiers
                   + ") or provider/model with one of: " + providers + ".",
               "model", "model_not_found"};
}

result<route> resolve_embedding_route(const config& cfg, std::string_view model) {
  if (const auto* m = cfg.find_embedding_model(model)) {
    return route{m->name, m->entries};
  }
  if (cfg.find_tier(model) != nullptr) {
    return error{errc::invalid_request,
                 "The model '" + std::string(model)
                     + "' is a chat tier. Embeddings need one model: vectors of different models "
                       "are not comparable, so they never fall back across models. Use "
                       "provider/model (e.g. openai/text-embedding-3-small) or a name under "
                       "embedding_models.",
                 "model", "model_not_found"};
  }
  if (auto r = direct_route(cfg, model)) {
    return std::move(*r);
  }
  std::string names;
  for (const auto& m : cfg.embedding_models) {
    names += names.empty() ? "" : ", ";
    names += m.name;
  }
  return error{errc::not_found,
               "The embedding model '" + std::string(model)
                   + "' does not exist. Use provider/model (e.g. openai/text-embedding-3-small)"
                   + (names.empty() ? std::string{} : " or one of: " + names) + ".",
               "model", "model_not_found"};
}

}  // namespace ib::config
