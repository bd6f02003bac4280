// libFuzzer target: chat request validation (providers/chat_request.cpp `parse_chat_request`).
// Input: the client's body. An accepted body must be one JSON object (RapidJSON's own parse
// agrees), within the depth limit, and its member spans must point at its keys and values.

#include "providers/chat_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "fuzz/fuzz_support.hpp"

namespace {

using ib::fuzz::check;

constexpr int max_depth = 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto r = ib::providers::parse_chat_request(body, {.max_depth = max_depth});
  if (!r) {
    check(r.error().code == ib::errc::invalid_request, "a refusal that is not invalid_request",
          r.error().message);
    check(!r.error().message.empty(), "a refusal without a message");
    return 0;
  }
  const ib::providers::chat_request& req = *r;
  check(req.body == body, "the body was changed");
  {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    check(!d.HasParseError() && d.IsObject(), "accepted a body that is not a JSON object");
    check(d.HasMember("model") && d["model"].IsString() && d["model"].GetStringLength() > 0,
          "accepted a body without a string model");
    check(d.HasMember("messages") && d["messages"].IsArray() && !d["messages"].Empty(),
          "accepted a body without messages");
  }
  check(!ib::providers::exceeds_depth(body, max_depth), "accepted a body deeper than the limit");
  check(!req.model.empty(), "empty model");
  std::uint32_t last_end = 0;
  std::string scratch;
  for (const auto& m : req.members) {
    check(m.begin >= last_end && m.begin < m.key_begin && m.key_begin <= m.key_end
              && m.key_end < m.value_begin && m.value_begin < m.value_end
              && m.value_end <= body.size(),
          "member spans out of order");
    check(body[m.begin] == '"' && body[m.key_begin - 1] == '"' && body[m.key_end] == '"',
          "a key span not inside quotes");
    last_end = m.value_end;
    check(ib::fuzz::is_json(req.raw_value(m)), "a member value span is not JSON", req.raw_value(m));
    std::string_view key = ib::providers::unescape_key(req.key(m), scratch);
    check(ib::fuzz::is_utf8(key), "an unescaped key is not UTF-8");
  }
  check(req.raw_value("model").has_value(), "raw_value(\"model\") not found");
  check(req.raw_value("messages").has_value(), "raw_value(\"messages\") not found");
  return 0;
}
