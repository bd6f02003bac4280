#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"

namespace ib::config {

/// Where a chat request goes (design §4): the plan of a tier, or a single `provider/model`.
struct route {
  std::string tier;              ///< the tier's name; empty for a direct `provider/model`
  std::vector<tier_entry> plan;  ///< providers to try, in order
};

/// Resolves the request's `model`: a configured tier (`ib/balanced`, …) gives its plan; otherwise
/// `provider/model` with a configured provider gives that provider alone, with the rest of the
/// name as the upstream model (which may itself hold slashes: `groq/openai/gpt-oss-120b`). Any
/// other name is errc::not_found (`param` "model", `code` "model_not_found"), with a message
/// naming the tiers and providers.
result<route> resolve_route(const config& cfg, std::string_view model);

/// Resolves an embeddings request's `model`: a configured embedding model name
/// (`embedding_models`) gives its entries, which all serve the same model; `provider/model`
/// gives that provider alone. A chat tier is refused (errc::invalid_request: vectors of
/// different models are not comparable, so a tier's fallback across models would corrupt an
/// index); any other name is errc::not_found (`model_not_found`).
result<route> resolve_embedding_route(const config& cfg, std::string_view model);

}  // namespace ib::config
