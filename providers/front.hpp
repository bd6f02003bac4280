#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
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

/// The base of a translator that re-emits what a chat-chunk translator of the same attempt
/// produces in another API's events (providers/responses.cpp, anthropic_inbound.cpp): each
/// `feed` and `finish` runs the inner translator into `inner_out_` (its `client_bytes` are
/// `chat.completion.chunk` SSE), then calls `translate`, which writes the client's events to
/// `out` and carries the inner commit flag, usage, model and failure over. Pure; one per attempt.
class chat_stream_wrapper : public stream_translator {
 public:
  explicit chat_stream_wrapper(std::unique_ptr<stream_translator> inner)
      : inner_(std::move(inner)) {}

  void feed(std::string_view bytes, stream_output& out) final {
    inner_out_.client_bytes.clear();
    inner_out_.payload = false;
    inner_->feed(bytes, inner_out_);
    translate(out);
  }

  void finish(stream_output& out) final {
    inner_out_.client_bytes.clear();
    inner_out_.payload = false;
    if (!inner_out_.done && !inner_out_.failure) {
      inner_->finish(inner_out_);
    }
    translate(out);
  }

 protected:
  /// Converts what the inner translator has just produced (`inner_out_`) into `out`.
  virtual void translate(stream_output& out) = 0;

  stream_output inner_out_;  ///< the inner translator's output (sticky flags kept across calls)

 private:
  std::unique_ptr<stream_translator> inner_;
};

}  // namespace ib::providers
