#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <rapidjson/document.h>

#include "config/config.hpp"
#include "core/request_record.hpp"
#include "core/result.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"
#include "providers/dialect.hpp"

/// The OpenAI-compatible wire (providers.md §1, §3): OpenAI, Groq, DeepSeek, Together, Sarvam and
/// custom OpenAI-style servers, each with its dialect's quirks. Pure: no I/O.
namespace ib::providers::openai {

/// The header that carries `key` in `style` (`authorization: Bearer <key>`, `x-api-key`, or
/// `api-subscription-key`).
std::pair<std::string_view, std::string> auth_header(config::auth_style style,
                                                     std::string_view key);

/// The upstream body for `req` in dialect `d`: the client's top-level members copied in order,
/// `model` set to `upstream_model`, fields dropped or renamed per `d`, `stream_options` forced to
/// include usage on streams where `d` wants it, and `messages` rebuilt only for a nested rewrite
/// (developer role, names, reasoning_content). errc::invalid_request (param = the field) when a
/// field `d` cannot accept is set, or `n` is not 1 where only one choice is supported.
/// `drop_sampling`: leave out `temperature` and `top_p` (see `refuses_sampling`).
result<std::string> encode_body(const dialect& d, const chat_request& req,
                                std::string_view upstream_model, bool drop_sampling = false);

/// True when `upstream_model` starts with one of `p.reasoning_models` and the request does not
/// set `reasoning_effort: "none"`: such models answer 400 `unsupported_parameter` to
/// `temperature` or `top_p` (a 400 never falls back, so one would end the whole tier), and the
/// two are left out instead.
bool refuses_sampling(const config::provider_config& p, const chat_request& req,
                      std::string_view upstream_model) noexcept;

/// The skeleton of an upstream request to `p`: target `<base path><path>`, fresh JSON headers
/// (content-type, accept for `req.stream`, and `p`'s auth header), `body`.
upstream_request make_request(const config::provider_config& p, const chat_request& req,
                              std::string_view path, std::string_view api_key, std::string body);

/// `encode_body` plus target (`<base path>/chat/completions`) and fresh headers for `p`.
result<upstream_request> encode_request(const config::provider_config& p, const chat_request& req,
                                        std::string_view upstream_model, std::string_view api_key);

/// Interprets a non-streamed answer (see `decode_response` in adapter.hpp).
decoded_response decode(const config::provider_config& p, const chat_request& req,
                        std::string_view upstream_model, const upstream_response& res);

/// Translates an OpenAI-style SSE stream (see `stream_translator` in adapter.hpp).
std::unique_ptr<stream_translator> make_translator(const config::provider_config& p,
                                                   const chat_request& req,
                                                   std::string_view upstream_model);

/// Usage from a completion or chunk object: its `usage` object (cached tokens from
/// `prompt_tokens_details.cached_tokens` or DeepSeek's `prompt_cache_hit_tokens`), else Groq's
/// `x_groq.usage`; nullopt when there is none.
std::optional<ib::usage> read_usage(const rapidjson::Value& obj) noexcept;

}  // namespace ib::providers::openai
