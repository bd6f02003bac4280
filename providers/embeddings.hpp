#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/result.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

/// `POST /v1/embeddings` to OpenAI-compatible providers: the body is forwarded with `model`
/// patched (`input` as a string, strings, or token arrays; `encoding_format` `float` or `base64`
/// and `dimensions` pass through), the answer passed back unchanged. Pure: no I/O.
/// Reference: platform.openai.com/docs/api-reference/embeddings (checked 2026-11-30).
namespace ib::providers::embeddings {

/// Validates an embeddings body: `model` a non-empty string; `input` a non-empty string, an array
/// of strings, an array of integers or an array of integer arrays (none empty); `encoding_format`
/// absent, `float` or `base64`; no `stream: true`. `api` = embeddings, `native_*` =
/// `body`/`members`. errc::invalid_request with `param`.
result<chat_request> parse_request(std::string body, const parse_limits& limits);

/// `<base path>/embeddings` with `model` patched; errc::invalid_request for a provider that does
/// not serve embeddings (the Anthropic protocol).
result<upstream_request> encode(const config::provider_config& p, const chat_request& req,
                                std::string_view upstream_model, std::string_view api_key);

/// 2xx: a JSON object whose `data` is an array passes through unchanged (usage read); else
/// bad_response. Errors are mapped as for chat.
decoded_response decode(const config::provider_config& p, const chat_request& req,
                        std::string_view upstream_model, const upstream_response& res);

}  // namespace ib::providers::embeddings
