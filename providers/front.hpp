#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/request_record.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

/// What differs between the APIs a client may call (`client_api`): the shape of the errors the
/// gateway writes itself, and of an error event inside a started stream. Requests, answers and
/// streams are converted per provider in adapter.cpp (native, or through the chat form). Pure.
namespace ib::providers {

/// `body` (a JSON object whose top-level members are `members`, as `parse_chat_request` indexed
/// them) with the value of `model` replaced by `upstream_model` (written as a JSON string), and
/// every other byte kept as it came: the body of a native forward. `model` is added first when
/// absent.
std::string patch_model(std::string_view body, const std::vector<member_span>& members,
                        std::string_view upstream_model);

/// The error body the gateway sends a client of `api` for `err`: OpenAI's envelope
/// (`{"error":{"message","type","param","code"}}`) for the OpenAI APIs, Anthropic's
/// (`{"type":"error","error":{"type","message"}}`, anthropic-sdk error types) for `messages` and
/// `count_tokens`; with `inferbridge_attempts` when `attempts` is given.
std::string front_error_body(client_api api, const error& err,
                             const std::vector<attempt_record>* attempts = nullptr);

/// An error body the provider layer produced (the OpenAI envelope; for a native Anthropic answer
/// possibly Anthropic's own shape), in the shape `api`'s clients expect; `status` is the HTTP
/// status it goes with. Identity for the OpenAI APIs.
std::string front_error_from_envelope(client_api api, std::string body, int status);

/// The event that ends a started stream of `api` with `f` (design §4: never a silent
/// truncation): `data: {"error":...}` for chat completions; Responses' `error` event; Anthropic's
/// `event: error`. Each makes the official SDK raise.
std::string front_stream_error_event(client_api api, const stream_failure& f);

}  // namespace ib::providers
