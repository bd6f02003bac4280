#include "providers/embeddings.hpp"

#include <utility>

#include <rapidjson/document.h>

#include "providers/dialect.hpp"
#include "providers/error_map.hpp"
#include "providers/front.hpp"
#include "providers/json.hpp"
#include "providers/openai.hpp"

namespace ib::providers::embeddings {

namespace {

error bad_input(std::string message) {
  return error{errc::invalid_request, std::move(message), "input"};
}

/// Checks `input`: a non-empty string, or a non-empty array of non-empty strings, of integers,
/// or of non-empty integer arrays (OpenAI's four forms; arrays of one kind only).
std::optional<error> check_input(const rapidjson::Value& v) {
  constexpr auto expected =
      "input: expected a string, an array of strings, an array of token ids or an array of "
      "token-id arrays";
  if (v.IsString()) {
    if (v.GetStringLength() == 0) {
      return bad_input("input: must not be an empty string");
    }
    return std::nullopt;
  }
  if (!v.IsArray()) {
    return bad_input(expected);
  }
  if (v.Empty()) {
    return bad_input("input: must not be an empty array");
  }
  const auto& first = v[0];
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const auto& item = v[i];
    const auto at = "input[" + std::to_string(i) + "]";
    if (first.IsString()) {
      if (!item.IsString()) {
        return bad_input(at + ": expected a string, as input[0]");
      }
      if (item.GetStringLength() == 0) {
        return bad_input(at + ": must not be an empty string");
      }
    } else if (first.IsNumber()) {
      if (!item.IsUint()) {
        return bad_input(at + ": expected a non-negative integer token id");
      }
    } else if (first.IsArray()) {
      if (!item.IsArray() || item.Empty()) {
        return bad_input(at + ": expected a non-empty array of token ids");
      }
      for (const auto& t : item.GetArray()) {
        if (!t.IsUint()) {
          return bad_input(at + ": expected non-negative integer token ids");
        }
      }
    } else {
      return bad_input(expected);
    }
  }
  return std::nullopt;
}

}  // namespace

result<chat_request> parse_request(std::string body, const parse_limits& limits) {
  auto lim = limits;
  lim.require_messages = false;
  auto req = parse_chat_request(std::move(body), lim);
  if (!req) {
    return req;
  }
  if (req->stream) {
    return error{errc::invalid_request, "stream: embeddings are not streamed", "stream"};
  }
  auto input = req->raw_value("input");
  if (!input) {
    return error{errc::invalid_request, "you must provide an input parameter", "input"};
  }
  rapidjson::Document doc;
  if (!json::parse_fast(doc, *input)) {
    return bad_input("input: expected valid JSON");  // unreachable: the body parsed
  }
  if (auto err = check_input(doc)) {
    return *err;
  }
  if (auto format = req->raw_value("encoding_format"); format && *format != "null") {
    if (*format != R"("float")" && *format != R"("base64")") {
      return error{errc::invalid_request, "encoding_format: expected \"float\" or \"base64\"",
                   "encoding_format"};
    }
  }
  req->api = client_api::embeddings;
  req->native_body = req->body;
  req->native_members = req->members;
  return req;
}

result<upstream_request> encode(const config::provider_config& p, const chat_request& req,
                                std::string_view upstream_model, std::string_view api_key) {
  if (p.proto == config::protocol::anthropic) {
    return error{errc::invalid_request,
                 p.name + " does not serve embeddings (the Anthropic API has no embeddings "
                          "endpoint)",
                 "model"};
  }
  return openai::make_request(p, req, "/embeddings", api_key,
                              patch_model(req.body, req.members, upstream_model));
}

decoded_response decode(const config::provider_config& p, const chat_request&,
                        std::string_view upstream_model, const upstream_response& res) {
  if (res.status < 200 || res.status >= 300) {
    return to_decoded(
        map_openai_style_error(dialect_for(p), p.name, res.status, res.content_type, res.body));
  }
  rapidjson::Document doc;
  if (!json::parse_fast(doc, res.body) || !doc.IsObject()) {
    return to_decoded(invalid_response());
  }
  const rapidjson::Value* err = json::member(doc, "error");
  if ((err != nullptr && !err->IsNull()) || json::get_array(doc, "data") == nullptr) {
    return to_decoded(invalid_response());
  }
  decoded_response out;
  out.result = outcome::success;
  out.status = 200;
  out.body_is_input = true;  // vectors pass through as they came
  out.model = std::string(json::get_string(doc, "model").value_or(upstream_model));
  if (const auto* u = json::get_object(doc, "usage")) {
    ib::usage t;
    t.prompt_tokens = json::get_int(*u, "prompt_tokens").value_or(0);
    t.total_tokens = json::get_int(*u, "total_tokens").value_or(t.prompt_tokens);
    out.tokens = t;
  }
  return out;
}

}  // namespace ib::providers::embeddings
