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

/// The Messages API body for `req` (providers.md §2.1), with `model` = `upstream_model`.
/// errc::invalid_request (message names the field) for what Anthropic cannot express.
result<std::string> encode_body(const chat_request& req, std::string_view upstream_model);

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
