#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "actors/messages.hpp"
#include "app/api.hpp"
#include "config/config.hpp"
#include "http/message.hpp"
#include "http/server.hpp"

namespace ib::app {

// -- the rest of the OpenAI API, passed through (issue 15) ----------------------------------------
//
// Every `endpoint::openai_passthrough` row of app/routes.cpp (moderations, audio, images, files,
// batches, uploads, stored responses) is forwarded to the provider named `openai` (its
// `base_url`, TLS and timeouts) with the caller's registered OpenAI key: the client's method,
// path (the base URL's path + what follows `/v1`), query, and its `content-type`, `accept` and
// `openai-beta` headers; never its `Authorization`. No fallback, no translation, no record in the
// request log. The request body is streamed to OpenAI as it arrives (`http::body_source`, at most
// `limits.max_passthrough_body_bytes`), and the answer is streamed back whatever its type (JSON,
// SSE, audio bytes), with OpenAI's status and content type, plus `x-request-id` and
// `x-inferbridge-provider: openai`.
//
// The exchange runs on the I/O threads only (no actor: there is no walk to run): the session's
// body reads, the upstream client's writes and the response's writes drive one another, each
// waiting for the previous (back-pressure both ways). Errors are the OpenAI envelope: 424 without
// an OpenAI key (`no_provider_key`), 413 past the body limit, 400 for a malformed chunked body,
// 503 when no `openai` provider is configured, 504 when OpenAI did not answer in time
// (connect/first-byte timeouts, `limits.request_timeout_ms`), 502 for any other failure on the
// wire. A failure after the answer began closes the connection without the final chunk.

/// Forwards `req` to OpenAI with `user`'s OpenAI key and answers `res` exactly once (now or
/// later, from an I/O thread). `user` is authenticated and admitted: `limit` is its in-flight
/// slot (empty when no limit is on), held until the exchange ends. Never blocks.
void openai_passthrough(const std::shared_ptr<const api_context>& api,
                        std::shared_ptr<const actors::user_entry> user, http::request& req,
                        http::responder& res, limit_ticket limit = {});

/// For `http::server_options::streamed_body`: `limit` (`limits.max_passthrough_body_bytes`)
/// when `(m, target)` routes to a pass-through endpoint; none otherwise (the body is then read
/// whole, under `limits.max_body_bytes`).
std::optional<std::size_t> passthrough_body_limit(std::size_t limit, http::method m,
                                                  std::string_view target);

/// The upstream target of a client `target` (`/v1/files?limit=2`): `base_path` (the `openai`
/// base URL's path, e.g. `/v1`) followed by what comes after the leading `/v1` (path and
/// query, as received). Pure.
std::string upstream_target(std::string_view base_path, std::string_view target);

}  // namespace ib::app
