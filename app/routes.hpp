#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "http/router.hpp"

namespace ib::app {

// -- the gateway's HTTP surface: its endpoints and the request headers they read ----------------

/// The gateway's endpoints (design §3, the README's "Endpoints"); `none` is "no route".
enum class endpoint : std::uint16_t {
  none = 0,
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
  responses,         ///< POST /v1/responses (OpenAI Responses API, routed like chat)
  messages,          ///< POST /v1/messages (Anthropic Messages API, routed like chat)
  count_tokens,      ///< POST /v1/messages/count_tokens (Anthropic only)
  embeddings,        ///< POST /v1/embeddings (routed by model, no cross-model fallback)
  /// The rest of the OpenAI API (moderations, audio, images, files, batches, uploads, stored
  /// responses): forwarded to OpenAI with the user's OpenAI key (app/passthrough.hpp).
  openai_passthrough,
};

/// The rows of the gateway's route table, one per (method, path pattern) → endpoint, in match
/// order (app/routes.cpp; docs/where-things-go.md says how to add one). Static data.
std::span<const http::route> route_table() noexcept;

/// The gateway's router over `route_table()`, built on first use; thread-safe, never fails.
const http::router& routes();

/// The endpoint a match found; `none` when it failed (see `m.error`).
inline endpoint endpoint_of(const http::route_match& m) noexcept {
  return static_cast<endpoint>(m.id);
}

/// The request headers the endpoints read, as indexes into `http::request::headers`.
enum kept_header : std::size_t {
  authorization_header,      ///< `Authorization: Bearer ib_...` (or the admin token)
  timeout_header,            ///< `x-inferbridge-timeout-ms`: shortens the request deadline
  api_key_header,            ///< `x-api-key: ib_...` (Anthropic SDK clients)
  anthropic_version_header,  ///< `anthropic-version` (forwarded to Anthropic)
  anthropic_beta_header,     ///< `anthropic-beta` (forwarded to Anthropic)
  content_type_header,       ///< `content-type` (pass-through: multipart boundaries)
  accept_header,             ///< `accept` (pass-through)
  openai_beta_header,        ///< `openai-beta` (pass-through)
};

/// Their names, in `kept_header` order: the gateway's `http::server_options::kept_headers`.
inline constexpr std::array<std::string_view, 8> kept_header_names = {
    "authorization",  "x-inferbridge-timeout-ms",
    "x-api-key",      "anthropic-version",
    "anthropic-beta", "content-type",
    "accept",         "openai-beta"};
static_assert(kept_header_names.size() <= http::max_kept_headers);

}  // namespace ib::app
