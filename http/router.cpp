#include "http/router.hpp"

namespace ib::http {

namespace {

struct entry {
  std::string_view path;
  route get;
  route post;
  route del;
  std::string_view allow;
};

constexpr entry table[] = {
    {"/v1/users", route::none, route::create_user, route::none, "POST"},
    {"/v1/keys", route::list_keys, route::create_key, route::none, "GET, POST"},
    {"/v1/chat/completions", route::none, route::chat_completions, route::none, "POST"},
    {"/v1/models", route::list_models, route::none, route::none, "GET"},
    {"/v1/requests", route::list_requests, route::none, route::none, "GET"},
    {"/metrics", route::metrics, route::none, route::none, "GET"},
    {"/healthz", route::healthz, route::none, route::none, "GET"},
    {"/readyz", route::readyz, route::none, route::none, "GET"},
};

route_match pick(const entry& e, method m) noexcept {
  route r = route::none;
  switch (m) {
    case method::get:
    case method::head:
      r = e.get;
      break;
    case method::post:
      r = e.post;
      break;
    case method::delete_:
      r = e.del;
      break;
    default:
      break;
  }
  if (r == route::none) {
    return {route::none, {}, errc::method_not_allowed, e.allow};
  }
  return {r, {}, errc::none, {}};
}

}  // namespace

route_match match_route(method m, std::string_view path) noexcept {
  for (const auto& e : table) {
    if (path == e.path) {
      return pick(e, m);
    }
  }
  constexpr std::string_view keys_prefix = "/v1/keys/";
  if (path.starts_with(keys_prefix) && path.size() > keys_prefix.size()) {
    auto param = path.substr(keys_prefix.size());
    if (param.find('/') != std::string_view::npos) {
      return {route::none, {}, errc::not_found, {}};
    }
    if (m != method::delete_) {
      return {route::none, {}, errc::method_not_allowed, "DELETE"};
    }
    return {route::delete_key, param, errc::none, {}};
  }
  return {route::none, {}, errc::not_found, {}};
}

}  // namespace ib::http
