#pragma once

#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "http/message.hpp"

namespace ib::http {

/// The endpoints of design §3.
enum class route : std::uint8_t {
  none,
  create_user,       ///< POST /v1/users
  create_key,        ///< POST /v1/keys
  list_keys,         ///< GET /v1/keys
  delete_key,        ///< DELETE /v1/keys/{provider}
  chat_completions,  ///< POST /v1/chat/completions
  list_models,       ///< GET /v1/models
  list_requests,     ///< GET /v1/requests
  metrics,           ///< GET /metrics
  healthz,           ///< GET /healthz
  readyz,            ///< GET /readyz
};

struct route_match {
  http::route route = route::none;
  std::string_view param;   ///< `{provider}` of DELETE /v1/keys/{provider}
  errc error = errc::none;  ///< not_found or method_not_allowed when `route` is none
  std::string_view allow;   ///< the `Allow` header value for 405
};

/// Maps (method, path) to a route; pure. HEAD is accepted where GET is.
route_match match_route(method m, std::string_view path) noexcept;

}  // namespace ib::http
