// The mock's Anthropic token counting (`POST /anthropic/v1/messages/count_tokens`): validates
// what the real endpoint requires (`model`, a non-empty `messages` array of user/assistant
// turns; no `max_tokens`) and answers `{"input_tokens": N}`, N counted as for a chat reply (4 per
// message plus one per 4 bytes of text, `system` included), so a test can predict it.
// Reference: platform.claude.com/docs/api/messages/count_tokens (checked 2026-11-30).
#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "bench/mock/wire.hpp"

namespace ib::mock {

namespace {

const rapidjson::Value* member_of(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) {
    return nullptr;
  }
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

/// The text of a `content` or `system` value: a string, or its text blocks joined.
std::string text_of(const rapidjson::Value* v) {
  std::string out;
  if (v == nullptr) {
    return out;
  }
  if (v->IsString()) {
    out.assign(v->GetString(), v->GetStringLength());
  } else if (v->IsArray()) {
    for (const auto& b : v->GetArray()) {
      auto* type = member_of(b, "type");
      auto* text = member_of(b, "text");
      if (type != nullptr && type->IsString() && std::string_view(type->GetString()) == "text"
          && text != nullptr && text->IsString()) {
        out.append(text->GetString(), text->GetStringLength());
      }
    }
  }
  return out;
}

}  // namespace

chat_request parse_count_tokens_request(std::string_view body) {
  chat_request r;
  r.api = api_kind::count_tokens;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid = "There was an issue with your request body: it is not a JSON object.";
    return r;
  }
  r.parsed = true;
  if (auto* model = member_of(d, "model"); model != nullptr && model->IsString()) {
    r.model = std::string(model->GetString(), model->GetStringLength());
  }
  auto* messages = member_of(d, "messages");
  std::size_t count = 0;
  std::size_t text_bytes = text_of(member_of(d, "system")).size();
  std::string bad_role;
  if (messages != nullptr && messages->IsArray()) {
    for (const auto& m : messages->GetArray()) {
      ++count;
      auto* role = member_of(m, "role");
      std::string_view role_text =
          role != nullptr && role->IsString() ? std::string_view(role->GetString()) : "";
      auto text = text_of(member_of(m, "content"));
      text_bytes += text.size();
      if (role_text == "user") {
        r.user_text = std::move(text);
      } else if (role_text != "assistant" && bad_role.empty()) {
        bad_role = role_text.empty() ? std::string("(missing)") : std::string(role_text);
      }
    }
  }
  r.prompt_tokens = static_cast<int>(4 * count + (text_bytes + 3) / 4);
  if (!r.model) {
    r.invalid = "model: Field required";
  } else if (messages == nullptr || !messages->IsArray()) {
    r.invalid = "messages: Field required";
  } else if (count == 0) {
    r.invalid = "messages: at least one message is required";
  } else if (!bad_role.empty()) {
    r.invalid = "messages: Unexpected role \"" + bad_role + "\"";
  }
  return r;
}

std::string count_tokens_reply_body(const reply_context& x) {
  const int n = x.req != nullptr ? x.req->prompt_tokens : 1;
  return "{\"input_tokens\":" + std::to_string(n) + "}";
}

}  // namespace ib::mock
