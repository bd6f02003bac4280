#include "providers/adapter.hpp"

#include <utility>

#include "providers/anthropic.hpp"
#include "providers/anthropic_inbound.hpp"
#include "providers/embeddings.hpp"
#include "providers/openai.hpp"
#include "providers/responses.hpp"

// The protocol dispatch: the client's API (`req.api`) against the provider's protocol. A request
// the provider speaks natively is forwarded with `model` patched; any other goes through its
// chat-completions form and the answer is translated back. `stream_error_event` is defined in
// error_map.cpp, so that code which needs only one protocol links without the other.

namespace ib::providers {

namespace {

/// Whether `p` is to get `req` in its own API rather than as chat completions.
bool native(const config::provider_config& p, const chat_request& req) noexcept {
  switch (req.api) {
    case client_api::responses:
      return responses::native_for(p);
    case client_api::messages:
    case client_api::count_tokens:
      return p.proto == config::protocol::anthropic;
    case client_api::chat_completions:
    case client_api::embeddings:
      break;
  }
  return false;
}

result<upstream_request> encode_chat(const config::provider_config& p, const chat_request& req,
                                     std::string_view upstream_model, std::string_view api_key) {
  if (p.proto != config::protocol::anthropic) {
    return openai::encode_request(p, req, upstream_model, api_key);
  }
  auto body = anthropic::encode_body(req, upstream_model, p.anthropic_version);
  if (!body) {
    return std::move(body).error();
  }
  auto out = openai::make_request(p, req, "/messages", api_key, std::move(*body));
  out.headers.emplace_back("anthropic-version", p.anthropic_version);
  return out;
}

decoded_response decode_chat(const config::provider_config& p, const chat_request& req,
                             std::string_view upstream_model, const upstream_response& res) {
  if (p.proto == config::protocol::anthropic) {
    return anthropic::decode(req, upstream_model, res);
  }
  return openai::decode(p, req, upstream_model, res);
}

std::unique_ptr<stream_translator> chat_translator(const config::provider_config& p,
                                                   const chat_request& req,
                                                   std::string_view upstream_model) {
  if (p.proto == config::protocol::anthropic) {
    return anthropic::make_translator(req, upstream_model);
  }
  return openai::make_translator(p, req, upstream_model);
}

}  // namespace

result<upstream_request> encode_request(const config::provider_config& p, const chat_request& req,
                                        std::string_view upstream_model, std::string_view api_key) {
  switch (req.api) {
    case client_api::chat_completions:
      break;
    case client_api::embeddings:
      return embeddings::encode(p, req, upstream_model, api_key);
    case client_api::responses:
      if (native(p, req)) {
        return responses::encode_native(p, req, upstream_model, api_key);
      }
      if (req.responses_facts && !req.responses_facts->openai_only.empty()) {
        return error{errc::invalid_request, req.responses_facts->openai_only,
                     req.responses_facts->openai_only_param};
      }
      break;
    case client_api::messages:
      if (native(p, req)) {
        return anthropic_inbound::encode_native(p, req, upstream_model, api_key);
      }
      if (req.messages_facts && !req.messages_facts->anthropic_only.empty()) {
        return error{errc::invalid_request, req.messages_facts->anthropic_only};
      }
      break;
    case client_api::count_tokens:
      if (native(p, req)) {
        return anthropic_inbound::encode_native(p, req, upstream_model, api_key);
      }
      return error{errc::invalid_request,
                   "count_tokens is served by Anthropic only: " + p.name
                       + " has no token-counting endpoint. Use an anthropic/... model or a tier "
                         "whose providers include Anthropic."};
  }
  return encode_chat(p, req, upstream_model, api_key);
}

decoded_response decode_response(const config::provider_config& p, const chat_request& req,
                                 std::string_view upstream_model, const upstream_response& res) {
  switch (req.api) {
    case client_api::chat_completions:
      break;
    case client_api::embeddings:
      return embeddings::decode(p, req, upstream_model, res);
    case client_api::responses:
    case client_api::messages: {
      if (native(p, req)) {
        return req.api == client_api::responses
                   ? responses::decode_native(p, req, upstream_model, res)
                   : anthropic_inbound::decode_native(p, req, upstream_model, res);
      }
      auto d = decode_chat(p, req, upstream_model, res);
      if (d.result == outcome::success) {
        const std::string_view chat = d.body_is_input ? res.body : std::string_view(d.body);
        d.body = req.api == client_api::responses
                     ? responses::from_chat_completion(req, chat)
                     : anthropic_inbound::from_chat_completion(req, chat);
        d.body_is_input = false;
      }
      return d;
    }
    case client_api::count_tokens:
      return anthropic_inbound::decode_native(p, req, upstream_model, res);
  }
  return decode_chat(p, req, upstream_model, res);
}

std::unique_ptr<stream_translator> make_stream_translator(const config::provider_config& p,
                                                          const chat_request& req,
                                                          std::string_view upstream_model) {
  switch (req.api) {
    case client_api::chat_completions:
    case client_api::embeddings:
    case client_api::count_tokens:
      break;
    case client_api::responses:
      if (native(p, req)) {
        return responses::make_native_translator(p, req, upstream_model);
      }
      return responses::wrap_chat_translator(req, chat_translator(p, req, upstream_model));
    case client_api::messages:
      if (native(p, req)) {
        return anthropic_inbound::make_native_translator(p, req, upstream_model);
      }
      return anthropic_inbound::wrap_chat_translator(req, chat_translator(p, req, upstream_model));
  }
  return chat_translator(p, req, upstream_model);
}

}  // namespace ib::providers
