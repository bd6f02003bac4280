#include "providers/adapter.hpp"

#include <utility>

#include "providers/anthropic.hpp"
#include "providers/openai.hpp"

// The protocol dispatch. `stream_error_event` is defined in error_map.cpp, so that code which
// needs only one protocol links without the other.

namespace ib::providers {

result<upstream_request> encode_request(const config::provider_config& p, const chat_request& req,
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

decoded_response decode_response(const config::provider_config& p, const chat_request& req,
                                 std::string_view upstream_model, const upstream_response& res) {
  if (p.proto == config::protocol::anthropic) {
    return anthropic::decode(req, upstream_model, res);
  }
  return openai::decode(p, req, upstream_model, res);
}

std::unique_ptr<stream_translator> make_stream_translator(const config::provider_config& p,
                                                          const chat_request& req,
                                                          std::string_view upstream_model) {
  if (p.proto == config::protocol::anthropic) {
    return anthropic::make_translator(req, upstream_model);
  }
  return openai::make_translator(p, req, upstream_model);
}

}  // namespace ib::providers
