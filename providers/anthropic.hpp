#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/result.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

/// OpenAI chat completions <-> Anthropic Messages API (providers.md §2). Pure: no I/O.
namespace ib::providers::anthropic {

/// The first `anthropic-version` under which the API refuses `temperature`, `top_p` and `top_k`
/// (providers.md §2, checked 2026-11-30).
inline constexpr std::string_view first_version_without_sampling = "2026-10-21";

/// Whether requests sent with `anthropic-version: anthropic_version` may carry sampling
/// parameters (false from `first_version_without_sampling` on).
bool sampling_accepted(std::string_view anthropic_version) noexcept;

/// The Messages API body for `req` (providers.md §2.1), with `model` = `upstream_model`, for the
/// API version the gateway sends (`anthropic_version`, which decides the sampling parameters).
/// Inputs the OpenAI API accepts but Anthropic refuses are normalised (tool schemas without
/// `type`, tool ids Anthropic's pattern refuses, `image/jpg`, blank text and stop sequences,
/// temperature with top_p); what has no faithful mapping is errc::invalid_request with `param`
/// naming the client's field (e.g. `messages[2].tool_call_id`).
result<std::string> encode_body(const chat_request& req, std::string_view upstream_model,
                                std::string_view anthropic_version = "2023-06-01");

/// Interprets a non-streamed Messages API answer (providers.md §2.2): 2xx -> `chat.completion`;
/// otherwise the Anthropic error shape (or a non-JSON page) -> OpenAI envelope + outcome.
decoded_response decode(const chat_request& req, std::string_view upstream_model,
                        const upstream_response& res);

/// Translates the Anthropic event stream into OpenAI chunks (providers.md §2.3).
std::unique_ptr<stream_translator> make_translator(const chat_request& req,
                                                   std::string_view upstream_model);

/// As `decode`, with the `created` time (Unix seconds) given rather than read from the clock.
decoded_response decode(const chat_request& req, std::string_view upstream_model,
                        const upstream_response& res, std::int64_t created);

/// As `make_translator`, with the chunks' `created` time (Unix seconds) given rather than read
/// from the clock.
std::unique_ptr<stream_translator> make_translator(const chat_request& req,
                                                   std::string_view upstream_model,
                                                   std::int64_t created);

}  // namespace ib::providers::anthropic
