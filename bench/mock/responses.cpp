// The mock's OpenAI Responses API (POST /openai/v1/responses): the request fields the mock reacts
// to, the Response object and its event stream. Shapes: platform.openai.com/docs/api-reference/
// responses (the Response object; streaming events), checked 2026-11-30.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "bench/mock/wire.hpp"

namespace ib::mock {

namespace {

constexpr std::string_view created_at = "1732000000";
constexpr std::string_view call_id = "call_mock_1";
constexpr std::string_view arguments = R"({"city":"Pune","unit":"c"})";
constexpr std::string_view argument_pieces[] = {R"({"city":"Pu)", R"(ne","unit")", R"(:"c"})"};
constexpr std::size_t echo_limit = 60;

const rapidjson::Value* member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) {
    return nullptr;
  }
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string_view text_of(const rapidjson::Value* v) {
  return v != nullptr && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                       : std::string_view();
}

/// The text of a message's `content`: a string, or its text parts joined.
std::string content_text(const rapidjson::Value* content) {
  if (content == nullptr) {
    return {};
  }
  if (content->IsString()) {
    return std::string(text_of(content));
  }
  std::string out;
  if (content->IsArray()) {
    for (const auto& part : content->GetArray()) {
      out += text_of(member(part, "text"));
    }
  }
  return out;
}

/// The longest prefix of `s` of at most `limit` bytes that does not cut a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t limit) {
  if (s.size() <= limit) {
    return s;
  }
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
    --n;
  }
  return s.substr(0, n);
}

int tokens_for(std::size_t bytes) {
  return static_cast<int>(bytes / 4) + 1;
}

struct reply {
  bool tool = false;
  std::vector<std::string> text;
  int input_tokens = 1;
  int output_tokens = 1;
};

reply make_reply(const reply_context& x) {
  reply r;
  const auto& req = *x.req;
  r.tool = !req.first_tool.empty() && req.user_text.find("CALL_TOOL") != std::string::npos;
  if (!r.tool) {
    r.text = {"Hello from mock ", std::string(name(x.who)) + "! ",
              "You said: " + std::string(utf8_prefix(req.user_text, echo_limit))};
  }
  std::size_t bytes = r.tool ? arguments.size() : 0;
  for (const auto& t : r.text) {
    bytes += t.size();
  }
  r.input_tokens = req.prompt_tokens;
  r.output_tokens = tokens_for(bytes);
  return r;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    out += p;
  }
  return out;
}

std::string suffix(const reply_context& x) {
  return "mock_" + std::to_string(x.n);
}

std::string usage_json(const reply& r) {
  return "{\"input_tokens\":" + std::to_string(r.input_tokens)
         + ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":"
         + std::to_string(r.output_tokens)
         + ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":"
         + std::to_string(r.input_tokens + r.output_tokens) + "}";
}

/// The output item; `done` false: as first added (no text, no arguments, in progress).
std::string item_json(const reply_context& x, const reply& r, bool done) {
  std::string o;
  const std::string_view status = done ? "completed" : "in_progress";
  if (r.tool) {
    o += "{\"id\":\"fc_" + suffix(x) + "\",\"type\":\"function_call\",\"status\":\"";
    o += status;
    o += "\",\"arguments\":";
    append_json_string(o, done ? arguments : std::string_view());
    o += ",\"call_id\":\"";
    o += call_id;
    o += "\",\"name\":";
    append_json_string(o, x.req->first_tool);
    o += '}';
    return o;
  }
  o += "{\"id\":\"msg_" + suffix(x) + "\",\"type\":\"message\",\"status\":\"";
  o += status;
  o += "\",\"content\":[";
  if (done) {
    o += "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":";
    append_json_string(o, joined(r.text));
    o += '}';
  }
  o += "],\"role\":\"assistant\"}";
  return o;
}

/// The Response object; `done` false: as in `response.created` (in progress, no output).
std::string response_json(const reply_context& x, const reply& r, bool done) {
  std::string o = "{\"id\":\"resp_" + suffix(x) + "\",\"object\":\"response\",\"created_at\":";
  o += created_at;
  o += ",\"status\":\"";
  o += done ? "completed" : "in_progress";
  o += "\",\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null,"
       "\"max_output_tokens\":null,\"max_tool_calls\":null,\"model\":";
  append_json_string(o, x.model);
  o += ",\"output\":[";
  if (done) {
    o += item_json(x, r, true);
  }
  o += "],\"parallel_tool_calls\":true,\"previous_response_id\":null,"
       "\"reasoning\":{\"effort\":null,\"summary\":null},\"service_tier\":\"default\","
       "\"store\":true,\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},"
       "\"verbosity\":\"medium\"},\"tool_choice\":\"auto\",\"tools\":[],\"top_logprobs\":0,"
       "\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":";
  o += done ? usage_json(r) : std::string("null");
  o += ",\"user\":null,\"metadata\":{}}";
  return o;
}

}  // namespace

chat_request parse_responses_request(std::string_view body) {
  chat_request r;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid =
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly.)";
    return r;
  }
  r.parsed = true;
  if (const auto* model = member(d, "model"); model != nullptr && model->IsString()) {
    r.model = std::string(text_of(model));
  }
  if (const auto* s = member(d, "stream"); s != nullptr && s->IsBool()) {
    r.stream = s->GetBool();
  }
  if (const auto* tools = member(d, "tools"); tools != nullptr && tools->IsArray()) {
    for (const auto& t : tools->GetArray()) {
      if (text_of(member(t, "type")) == "function") {
        auto n = text_of(member(t, "name"));
        r.first_tool = n.empty() ? std::string("tool") : std::string(n);
        break;
      }
    }
  }
  const auto* input = member(d, "input");
  std::size_t items = 1;
  std::size_t bytes = content_text(member(d, "instructions")).size();
  if (input != nullptr && input->IsString()) {
    r.user_text = std::string(text_of(input));
    bytes += r.user_text.size();
  } else if (input != nullptr && input->IsArray()) {
    items = input->Size();
    for (const auto& item : input->GetArray()) {
      auto text = content_text(member(item, "content"));
      bytes += text.size() + text_of(member(item, "output")).size();
      if (text_of(member(item, "role")) == "user") {
        r.user_text = std::move(text);
      } else if (text_of(member(item, "type")) == "function_call_output") {
        // A tool round trip: the answer echoes the tool's output instead of calling it again.
        r.user_text = std::string(text_of(member(item, "output")));
      }
    }
  }
  r.prompt_tokens = static_cast<int>(4 * items) + tokens_for(bytes);
  const bool stateful = member(d, "previous_response_id") != nullptr
                        || member(d, "conversation") != nullptr || member(d, "prompt") != nullptr;
  if (!r.model) {
    r.invalid = "Missing required parameter: 'model'.";
  } else if (input != nullptr && !input->IsString() && !input->IsArray()) {
    r.invalid = "Invalid type for 'input': expected one of a string or array of input items.";
  } else if (input == nullptr && !stateful) {
    r.invalid = "Missing required parameter: 'input'.";
  }
  return r;
}

std::string responses_reply_body(const reply_context& x) {
  return response_json(x, make_reply(x), true);
}

std::vector<sse_event> responses_reply_events(const reply_context& x) {
  const reply r = make_reply(x);
  std::vector<sse_event> ev;
  int seq = 0;
  // Each payload: {"type":…, <body>, "sequence_number":…}.
  auto add = [&](std::string_view type, const std::string& body, event_role role) {
    std::string data = "{\"type\":\"";
    data += type;
    data += "\",";
    data += body;
    data += ",\"sequence_number\":" + std::to_string(seq++) + "}";
    ev.push_back(sse_event{std::string(type), std::move(data), role});
  };
  const std::string item_id = (r.tool ? "\"fc_" : "\"msg_") + suffix(x) + "\"";
  const std::string where = "\"item_id\":" + item_id + ",\"output_index\":0";
  add("response.created", "\"response\":" + response_json(x, r, false), event_role::head);
  add("response.in_progress", "\"response\":" + response_json(x, r, false), event_role::head);
  add("response.output_item.added", "\"output_index\":0,\"item\":" + item_json(x, r, false),
      event_role::head);
  if (r.tool) {
    for (auto piece : argument_pieces) {
      std::string body = where + ",\"delta\":";
      append_json_string(body, piece);
      add("response.function_call_arguments.delta", body, event_role::content);
    }
    std::string done = where + ",\"name\":";
    append_json_string(done, x.req->first_tool);
    done += ",\"arguments\":";
    append_json_string(done, arguments);
    add("response.function_call_arguments.done", done, event_role::tail);
  } else {
    const std::string part = where + ",\"content_index\":0,\"part\":";
    add("response.content_part.added",
        part + R"({"type":"output_text","annotations":[],"logprobs":[],"text":""})",
        event_role::head);
    for (const auto& piece : r.text) {
      std::string body = where + ",\"content_index\":0,\"delta\":";
      append_json_string(body, piece);
      body += ",\"logprobs\":[]";
      add("response.output_text.delta", body, event_role::content);
    }
    std::string text;
    append_json_string(text, joined(r.text));
    add("response.output_text.done",
        where + ",\"content_index\":0,\"text\":" + text + ",\"logprobs\":[]", event_role::tail);
    add("response.content_part.done",
        part + R"({"type":"output_text","annotations":[],"logprobs":[],"text":)" + text + "}",
        event_role::tail);
  }
  add("response.output_item.done", "\"output_index\":0,\"item\":" + item_json(x, r, true),
      event_role::tail);
  add("response.completed", "\"response\":" + response_json(x, r, true), event_role::terminal);
  return ev;
}

sse_event responses_inband_error_event(const reply_context&) {
  return {
      "error",
      R"({"type":"error","code":"server_error","message":"The server had an error while processing your request. Sorry about that!","param":null,"sequence_number":0})",
      event_role::tail};
}

}  // namespace ib::mock
