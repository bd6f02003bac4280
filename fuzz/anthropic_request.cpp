// libFuzzer target: OpenAI → Anthropic request translation (providers/anthropic.cpp
// `encode_body`), and the upstream body every shipped provider gets (providers/adapter.cpp
// `encode_request`: OpenAI-compatible patching per dialect, or the Anthropic translation).
//
// Input: byte 0 picks the provider and the Anthropic API version, the rest is the client's body.
// Every body produced must be a JSON object (parsed back with RapidJSON), and the Anthropic one
// must name the upstream model and carry a `messages` array.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "config/load.hpp"
#include "fuzz/fuzz_support.hpp"
#include "providers/adapter.hpp"
#include "providers/anthropic.hpp"
#include "providers/chat_request.hpp"

namespace {

using ib::fuzz::check;

const ib::config::config& shipped() {
  static const ib::config::config cfg = [] {
    auto c = ib::config::load_default({});
    check(c.has_value(), "the shipped configuration does not load");
    return *c;
  }();
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::uint8_t pick = data[0];
  auto req = ib::providers::parse_chat_request(
      std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  if (!req) {
    return 0;
  }

  constexpr std::string_view model = "claude-sonnet-4-6";
  const std::string_view version = (pick & 1) != 0
                                       ? ib::providers::anthropic::first_version_without_sampling
                                       : std::string_view("2023-06-01");
  auto body = ib::providers::anthropic::encode_body(*req, model, version);
  if (body) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body->data(), body->size());
    check(!d.HasParseError() && d.IsObject(), "the Anthropic body is not a JSON object", *body);
    check(d.HasMember("model") && d["model"].IsString() && d["model"].GetString() == model,
          "the Anthropic body does not name the upstream model", *body);
    check(d.HasMember("messages") && d["messages"].IsArray(),
          "the Anthropic body has no messages array", *body);
    if ((pick & 1) != 0) {
      check(!d.HasMember("temperature") && !d.HasMember("top_p") && !d.HasMember("top_k"),
            "sampling parameters sent to a version that refuses them", *body);
    }
  } else {
    check(body.error().code == ib::errc::invalid_request, "a refusal that is not invalid_request",
          body.error().message);
  }

  const auto& providers = shipped().providers;
  const auto& p = providers[(pick >> 1) % providers.size()];
  auto up = ib::providers::encode_request(p, *req, "upstream-model", "sk-fuzz");
  if (up) {
    check(ib::fuzz::is_json_object(up->body), "an upstream body is not a JSON object", up->body);
    check(!up->target.empty() && up->target.front() == '/', "an upstream target without a path");
  } else {
    check(up.error().code == ib::errc::invalid_request, "a refusal that is not invalid_request",
          up.error().message);
  }
  return 0;
}
