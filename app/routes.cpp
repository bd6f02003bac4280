#include "app/routes.hpp"

namespace ib::app {

namespace {

using http::method;

constexpr auto id(endpoint e) noexcept {
  return static_cast<std::uint16_t>(e);
}

/// One row per (method, path pattern); the router derives 404, 405 and `Allow` from it.
constexpr http::route table[] = {
    {method::post, "/v1/users", id(endpoint::create_user)},
    {method::get, "/v1/keys", id(endpoint::list_keys)},
    {method::post, "/v1/keys", id(endpoint::create_key)},
    {method::delete_, "/v1/keys/{provider}", id(endpoint::delete_key)},
    {method::post, "/v1/chat/completions", id(endpoint::chat_completions)},
    {method::get, "/v1/models", id(endpoint::list_models)},
    {method::get, "/v1/requests", id(endpoint::list_requests)},
    {method::get, "/metrics", id(endpoint::metrics)},
    {method::get, "/healthz", id(endpoint::healthz)},
    {method::get, "/readyz", id(endpoint::readyz)},
};

}  // namespace

std::span<const http::route> route_table() noexcept {
  return table;
}

const http::router& routes() {
  static const http::router r{route_table()};
  return r;
}

}  // namespace ib::app
