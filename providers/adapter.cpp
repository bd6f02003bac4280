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
  auto body = anthropic::encode_body(req, upstream_model);
  if (!body) {
    return std::move(body).error();
  }
  upstream_request out;
  out.target.reserve(p.endpoint.path.size() + 9);
  out.target += p.endpoint.path;
  out.target += "/messages";
  out.headers.reserve(4);
  out.headers.emplace_back("content-type", "application/json");
  out.headers.emplace_back("accept", req.stream ? "text/event-stream" : "application/json");
  out.headers.push_back(openai::auth_header(p.auth, api_key));
  out.headers.emplace_back("anthropic-version", p.anthropic_version);
  out.body = std::move(*body);
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
