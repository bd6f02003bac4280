#include "providers/responses.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "core/json.hpp"
#include "core/text.hpp"
#include "providers/dialect.hpp"
#include "providers/error_map.hpp"
#include "providers/front.hpp"
#include "providers/json.hpp"
#include "providers/openai.hpp"
#include "providers/sse.hpp"

// Shapes checked on 2026-11-30 against the Responses API reference (request body, the Response
// object, streaming events) as stored copies show it, and against what openai-node 6.49 reads:
// lib/responses/ResponseAccumulator.js (every event after `response.created` updates the
// snapshot by `output_index`/`content_index`), lib/ResponsesParser.js (`output_text` is the
// concatenated `output_text` parts of `message` items) and core/streaming.js (an event whose
// data has an `error` member raises APIError).

namespace ib::providers::responses {

namespace {

using rapidjson::Value;

// -- small helpers --------------------------------------------------------------------------------

/// `v` written compactly by json_writer (strings made valid UTF-8).
std::string to_json(const Value& v) {
  std::string out;
  json_writer(out).value(v);
  return out;
}

/// The member `key` unless absent or null.
const Value* present(const Value& obj, std::string_view key) {
  const Value* v = json::member(obj, key);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

std::string index_path(std::string_view base, std::size_t i) {
  std::string out(base);
  out += '[';
  out += std::to_string(i);
  out += ']';
  return out;
}

error invalid(std::string param, std::string_view what) {
  std::string message = param;
  message += ": ";
  message += what;
  return error{errc::invalid_request, std::move(message), std::move(param)};
}

/// Letters, digits and `_` of `id` without its usual prefix (`chatcmpl-`, `msg_`), at most 48 of
/// them: the tail of the ids we make (`resp_<tail>`, `msg_<tail>`).
std::string id_tail(std::string_view id) {
  for (std::string_view prefix : {"chatcmpl-", "chatcmpl_", "msg_"}) {
    if (id.starts_with(prefix) && id.size() > prefix.size()) {
      id.remove_prefix(prefix.size());
      break;
    }
  }
  std::string out;
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (ok) {
      out.push_back(c);
      if (out.size() == 48) {
        break;
      }
    }
  }
  if (out.empty()) {
    out = "ib";
  }
  return out;
}

const request_facts& facts_of(const chat_request& req) {
  static const request_facts none;
  return req.responses_facts ? *req.responses_facts : none;
}

// -- request: Responses -> chat completions -------------------------------------------------------

constexpr std::string_view use_openai = " Use an openai/... model (OpenAI alone serves it), or ";
constexpr std::string_view send_items =
    "send the conversation as input items instead (the gateway keeps no content).";

/// Prefixes of `include` values that only OpenAI's built-in tools produce.
constexpr std::string_view builtin_includes[] = {
    "file_search_call.",
    "web_search_call.",
    "code_interpreter_call.",
    "computer_call_output.",
};

/// One chat message of the translation, its parts already JSON.
struct chat_message {
  std::string role;
  std::string content;                  ///< a JSON value; empty: null
  std::vector<std::string> tool_calls;  ///< JSON objects
  std::string tool_call_id;
};

class request_translator {
 public:
  request_translator(const Value& root, request_facts& facts) : root_(root), facts_(facts) {}

  /// The chat-completions body, or an empty string when the request is OpenAI's only.
  result<std::string> run(std::string_view model, bool stream);

 private:
  bool openai_only() const { return !facts_.openai_only.empty(); }
  void only(std::string param, std::string message) {
    if (!openai_only()) {
      facts_.openai_only = std::move(message);
      facts_.openai_only_param = std::move(param);
    }
  }

  void check_server_state();
  result<void> convert_input();
  result<void> convert_item(const Value& item, const std::string& path);
  result<void> convert_message(const Value& item, const std::string& path);
  result<std::string> message_content(const Value& content, std::string_view role,
                                      const std::string& path);
  result<void> convert_function_call(const Value& item, const std::string& path);
  result<void> convert_function_output(const Value& item, const std::string& path);
  result<std::string> convert_tools();
  result<std::string> convert_tool_choice();
  result<std::string> convert_text_format();
  result<void> echo_and_check_scalars();

  const Value& root_;
  request_facts& facts_;
  std::vector<chat_message> messages_;
};

void request_translator::check_server_state() {
  if (present(root_, "previous_response_id") != nullptr) {
    only("previous_response_id",
         std::string("previous_response_id: the previous response is stored by OpenAI, and only "
                     "OpenAI can continue it.")
             + std::string(use_openai) + std::string(send_items));
    return;
  }
  if (present(root_, "conversation") != nullptr) {
    only("conversation",
         std::string("conversation: conversations are stored by OpenAI, and only OpenAI can use "
                     "them.")
             + std::string(use_openai) + std::string(send_items));
    return;
  }
  if (const Value* b = present(root_, "background"); b != nullptr && b->IsBool() && b->GetBool()) {
    only("background",
         std::string("background: background responses are run and stored by OpenAI only.")
             + std::string(use_openai) + "send the request without background.");
    return;
  }
  if (present(root_, "prompt") != nullptr) {
    only("prompt",
         std::string("prompt: prompt templates are stored by OpenAI, and only OpenAI can use "
                     "them.")
             + std::string(use_openai) + "send instructions and input instead.");
    return;
  }
  if (const Value* inc = present(root_, "include"); inc != nullptr && inc->IsArray()) {
    for (const auto& v : inc->GetArray()) {
      auto s = json::view(v);
      for (auto prefix : builtin_includes) {
        if (s.starts_with(prefix)) {
          only("include", "include: " + std::string(s)
                              + " comes from OpenAI's built-in tools or stored files."
                              + std::string(use_openai) + "leave it out.");
          return;
        }
      }
    }
  }
}

result<void> request_translator::echo_and_check_scalars() {
  auto echo = [](const Value* v, std::string& into) {
    if (v != nullptr) {
      into = to_json(*v);
    }
  };
  if (const Value* v = present(root_, "instructions")) {
    if (!v->IsString() && !v->IsArray()) {
      return invalid("instructions", "expected a string");
    }
    echo(v, facts_.instructions);
  }
  if (const Value* v = present(root_, "temperature")) {
    if (!v->IsNumber()) {
      return invalid("temperature", "expected a number");
    }
    echo(v, facts_.temperature);
  }
  if (const Value* v = present(root_, "top_p")) {
    if (!v->IsNumber()) {
      return invalid("top_p", "expected a number");
    }
    echo(v, facts_.top_p);
  }
  if (const Value* v = present(root_, "max_output_tokens")) {
    if (!v->IsInt64() || v->GetInt64() < 1) {
      return invalid("max_output_tokens", "expected a positive integer");
    }
    echo(v, facts_.max_output_tokens);
  }
  if (const Value* v = present(root_, "parallel_tool_calls")) {
    if (!v->IsBool()) {
      return invalid("parallel_tool_calls", "expected a boolean");
    }
    echo(v, facts_.parallel_tool_calls);
  }
  if (const Value* v = present(root_, "metadata")) {
    if (!v->IsObject()) {
      return invalid("metadata", "expected an object of strings");
    }
    echo(v, facts_.metadata);
  }
  if (const Value* v = present(root_, "store"); v != nullptr && !v->IsBool()) {
    return invalid("store", "expected a boolean");
  }
  if (const Value* v = present(root_, "user")) {
    if (!v->IsString()) {
      return invalid("user", "expected a string");
    }
    echo(v, facts_.user);
  }
  if (const Value* v = present(root_, "text")) {
    if (!v->IsObject()) {
      return invalid("text", "expected an object");
    }
    echo(v, facts_.text);
  }
  if (const Value* v = present(root_, "reasoning")) {
    if (!v->IsObject()) {
      return invalid("reasoning", "expected an object");
    }
    echo(v, facts_.reasoning);
  }
  if (const Value* v = present(root_, "tools")) {
    if (!v->IsArray()) {
      return invalid("tools", "expected an array");
    }
    echo(v, facts_.tools);
  }
  if (const Value* v = present(root_, "tool_choice")) {
    echo(v, facts_.tool_choice);
  }
  return {};
}

/// Text of `part` when it is a text part (`input_text`, `output_text`, `text`, `refusal`).
std::optional<std::string_view> part_text(const Value& part) {
  auto type = json::get_string(part, "type").value_or("");
  if (type == "input_text" || type == "output_text" || type == "text") {
    return json::get_string(part, "text");
  }
  if (type == "refusal") {
    return json::get_string(part, "refusal");
  }
  return std::nullopt;
}

result<std::string> request_translator::message_content(const Value& content, std::string_view role,
                                                        const std::string& path) {
  std::string out;
  if (content.IsString()) {
    json_writer(out).string(json::view(content));
    return out;
  }
  if (!content.IsArray()) {
    return invalid(path, "expected a string or an array of content parts");
  }
  const bool user = role == "user";
  // System, developer and assistant turns take text only: their parts are joined.
  std::string joined;
  json_writer w(out);
  if (user) {
    w.start_array();
  }
  for (rapidjson::SizeType j = 0; j < content.Size(); ++j) {
    const Value& part = content[j];
    auto part_path = index_path(path, j);
    if (!part.IsObject()) {
      return invalid(part_path, "expected an object");
    }
    auto type = json::get_string(part, "type");
    if (!type) {
      return invalid(part_path + ".type", "expected a string");
    }
    if (auto text = part_text(part)) {
      if (user) {
        w.start_object().key("type").string("text").key("text").string(*text).end_object();
      } else {
        joined += *text;
      }
      continue;
    }
    if (part_text(part) == std::nullopt
        && (*type == "input_text" || *type == "output_text" || *type == "refusal")) {
      return invalid(part_path + (*type == "refusal" ? ".refusal" : ".text"), "expected a string");
    }
    if (*type == "input_image") {
      auto url = json::get_string(part, "image_url");
      if (!url) {
        if (present(part, "file_id") != nullptr) {
          only(part_path + ".file_id",
               part_path
                   + ": an image given by file_id is a file stored by OpenAI, and only OpenAI can "
                     "read it."
                   + std::string(use_openai) + "give the image as an image_url (https or data:).");
          return std::string();
        }
        return invalid(part_path + ".image_url", "expected a string (an https or data: URL)");
      }
      if (!user) {
        return invalid(part_path, "images are accepted in user messages only");
      }
      w.start_object().key("type").string("image_url").key("image_url").start_object();
      w.key("url").string(*url);
      if (auto detail = json::get_string(part, "detail")) {
        w.key("detail").string(*detail);
      }
      w.end_object().end_object();
      continue;
    }
    only(part_path + ".type", part_path + ": " + std::string(*type)
                                  + " content is served by OpenAI only." + std::string(use_openai)
                                  + "send text and image_url images instead.");
    return std::string();
  }
  if (user) {
    w.end_array();
  } else {
    w.string(joined);
  }
  w.out();
  return out;
}

result<void> request_translator::convert_message(const Value& item, const std::string& path) {
  auto role = json::get_string(item, "role");
  if (!role) {
    return invalid(path + ".role", "expected a string");
  }
  if (*role != "user" && *role != "assistant" && *role != "system" && *role != "developer") {
    return invalid(path + ".role", "expected \"user\", \"assistant\", \"system\" or \"developer\"");
  }
  const Value* content = json::member(item, "content");
  if (content == nullptr) {
    return invalid(path + ".content", "expected a string or an array of content parts");
  }
  auto text = message_content(*content, *role, path + ".content");
  if (!text) {
    return text.error();
  }
  if (openai_only()) {
    return {};
  }
  messages_.push_back(chat_message{std::string(*role), std::move(*text), {}, {}});
  return {};
}

result<void> request_translator::convert_function_call(const Value& item, const std::string& path) {
  auto call_id = json::get_string(item, "call_id");
  if (!call_id || call_id->empty()) {
    return invalid(path + ".call_id", "expected a non-empty string");
  }
  auto name = json::get_string(item, "name");
  if (!name || name->empty()) {
    return invalid(path + ".name", "expected a non-empty string");
  }
  auto arguments = json::get_string(item, "arguments");
  if (!arguments) {
    return invalid(path + ".arguments", "expected a string (JSON text)");
  }
  std::string call;
  {
    json_writer w(call);
    w.start_object();
    w.key("id").string(*call_id);
    w.key("type").string("function");
    w.key("function").start_object();
    w.key("name").string(*name);
    w.key("arguments").string(*arguments);
    w.end_object();
    w.end_object();
  }
  // Consecutive calls (and a text answer just before them) are one assistant turn in chat.
  if (messages_.empty() || messages_.back().role != "assistant") {
    messages_.push_back(chat_message{"assistant", {}, {}, {}});
  }
  messages_.back().tool_calls.push_back(std::move(call));
  return {};
}

result<void> request_translator::convert_function_output(const Value& item,
                                                         const std::string& path) {
  auto call_id = json::get_string(item, "call_id");
  if (!call_id || call_id->empty()) {
    return invalid(path + ".call_id", "expected a non-empty string");
  }
  const Value* output = json::member(item, "output");
  std::string content;
  if (output != nullptr && output->IsString()) {
    json_writer(content).string(json::view(*output));
  } else if (output != nullptr && output->IsArray()) {
    std::string joined;
    for (rapidjson::SizeType j = 0; j < output->Size(); ++j) {
      auto part_path = index_path(path + ".output", j);
      auto text = part_text((*output)[j]);
      if (!text) {
        only(part_path, part_path + ": only text tool output can be translated for this provider."
                            + std::string(use_openai) + "return text from the function.");
        return {};
      }
      joined += *text;
    }
    json_writer(content).string(joined);
  } else {
    return invalid(path + ".output", "expected a string or an array of content parts");
  }
  messages_.push_back(chat_message{"tool", std::move(content), {}, std::string(*call_id)});
  return {};
}

result<void> request_translator::convert_item(const Value& item, const std::string& path) {
  if (!item.IsObject()) {
    return invalid(path, "expected an object");
  }
  const Value* type_value = present(item, "type");
  if (type_value != nullptr && !type_value->IsString()) {
    return invalid(path + ".type", "expected a string");
  }
  const std::string_view type = type_value != nullptr ? json::view(*type_value) : "message";
  if (type == "message") {
    return convert_message(item, path);
  }
  if (type == "function_call") {
    return convert_function_call(item, path);
  }
  if (type == "function_call_output") {
    return convert_function_output(item, path);
  }
  if (type == "reasoning") {
    return {};  // OpenAI's own reasoning, useless to another model: dropped
  }
  if (type == "item_reference") {
    only(path, path
                   + ": an item_reference points at an item stored by OpenAI, and only OpenAI can "
                     "resolve it."
                   + std::string(use_openai) + std::string(send_items));
    return {};
  }
  only(path + ".type", path + ": " + std::string(type)
                           + " items belong to OpenAI's built-in tools and are served by OpenAI "
                             "only."
                           + std::string(use_openai)
                           + "send the conversation as message and function_call items.");
  return {};
}

result<void> request_translator::convert_input() {
  if (const Value* instructions = present(root_, "instructions");
      instructions != nullptr && instructions->IsString()) {
    std::string text;
    json_writer(text).string(json::view(*instructions));
    messages_.push_back(chat_message{"system", std::move(text), {}, {}});
  } else if (instructions != nullptr) {
    only("instructions", std::string("instructions: instructions given as items are served by "
                                     "OpenAI only.")
                             + std::string(use_openai) + "give instructions as a string.");
    return {};
  }
  const Value* input = present(root_, "input");
  if (input == nullptr) {
    return invalid("input", "expected a string or an array of input items");
  }
  if (input->IsString()) {
    std::string text;
    json_writer(text).string(json::view(*input));
    messages_.push_back(chat_message{"user", std::move(text), {}, {}});
    return {};
  }
  if (!input->IsArray()) {
    return invalid("input", "expected a string or an array of input items");
  }
  for (rapidjson::SizeType i = 0; i < input->Size(); ++i) {
    if (auto r = convert_item((*input)[i], index_path("input", i)); !r) {
      return r;
    }
    if (openai_only()) {
      return {};
    }
  }
  return {};
}

result<std::string> request_translator::convert_tools() {
  const Value* tools = present(root_, "tools");
  if (tools == nullptr || tools->Empty()) {
    return std::string();
  }
  std::string out;
  json_writer w(out);
  w.start_array();
  for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
    const Value& t = (*tools)[i];
    auto path = index_path("tools", i);
    if (!t.IsObject()) {
      return invalid(path, "expected an object");
    }
    auto type = json::get_string(t, "type");
    if (!type) {
      return invalid(path + ".type", "expected a string");
    }
    if (*type != "function") {
      only(path + ".type", path + ": the built-in tool " + std::string(*type)
                               + " runs at OpenAI only." + std::string(use_openai)
                               + "declare a function tool instead.");
      return std::string();
    }
    auto name = json::get_string(t, "name");
    if (!name || name->empty()) {
      return invalid(path + ".name", "expected a non-empty string");
    }
    w.start_object();
    w.key("type").string("function");
    w.key("function").start_object();
    w.key("name").string(*name);
    if (const Value* d = present(t, "description")) {
      if (!d->IsString()) {
        return invalid(path + ".description", "expected a string");
      }
      w.key("description").value(*d);
    }
    if (const Value* p = present(t, "parameters")) {
      if (!p->IsObject()) {
        return invalid(path + ".parameters", "expected a JSON Schema object");
      }
      w.key("parameters").value(*p);
    }
    if (const Value* s = present(t, "strict")) {
      if (!s->IsBool()) {
        return invalid(path + ".strict", "expected a boolean");
      }
      w.key("strict").value(*s);
    }
    w.end_object();
    w.end_object();
  }
  w.end_array();
  w.out();
  return out;
}

result<std::string> request_translator::convert_tool_choice() {
  const Value* tc = present(root_, "tool_choice");
  if (tc == nullptr) {
    return std::string();
  }
  std::string out;
  if (tc->IsString()) {
    auto s = json::view(*tc);
    if (s != "auto" && s != "none" && s != "required") {
      return invalid("tool_choice", "expected \"none\", \"auto\", \"required\" or an object");
    }
    json_writer(out).string(s);
    return out;
  }
  if (!tc->IsObject()) {
    return invalid("tool_choice", "expected \"none\", \"auto\", \"required\" or an object");
  }
  auto type = json::get_string(*tc, "type");
  if (!type) {
    return invalid("tool_choice.type", "expected a string");
  }
  if (*type == "function") {
    auto name = json::get_string(*tc, "name");
    if (!name || name->empty()) {
      return invalid("tool_choice.name", "expected a non-empty string");
    }
    json_writer w(out);
    w.start_object().key("type").string("function");
    w.key("function").start_object().key("name").string(*name).end_object();
    w.end_object();
    w.out();
    return out;
  }
  only("tool_choice", "tool_choice: " + std::string(*type) + " is served by OpenAI only."
                          + std::string(use_openai)
                          + "choose \"auto\", \"none\", \"required\" or a function.");
  return std::string();
}

result<std::string> request_translator::convert_text_format() {
  const Value* text = present(root_, "text");
  const Value* format = text != nullptr ? present(*text, "format") : nullptr;
  if (format == nullptr) {
    return std::string();
  }
  auto type = json::get_string(*format, "type");
  if (!type) {
    return invalid("text.format.type", "expected a string");
  }
  std::string out;
  if (*type == "text") {
    return out;
  }
  json_writer w(out);
  if (*type == "json_object") {
    w.start_object().key("type").string("json_object").end_object();
  } else if (*type == "json_schema") {
    auto name = json::get_string(*format, "name");
    const Value* schema = json::get_object(*format, "schema");
    if (!name || name->empty()) {
      return invalid("text.format.name", "expected a non-empty string");
    }
    if (schema == nullptr) {
      return invalid("text.format.schema", "expected a JSON Schema object");
    }
    w.start_object().key("type").string("json_schema");
    w.key("json_schema").start_object();
    w.key("name").string(*name);
    if (auto d = json::get_string(*format, "description")) {
      w.key("description").string(*d);
    }
    w.key("schema").value(*schema);
    if (auto s = json::get_bool(*format, "strict")) {
      w.key("strict").boolean(*s);
    }
    w.end_object();
    w.end_object();
  } else {
    return invalid("text.format.type", "expected \"text\", \"json_object\" or \"json_schema\"");
  }
  w.out();
  return out;
}

result<std::string> request_translator::run(std::string_view model, bool stream) {
  if (auto r = echo_and_check_scalars(); !r) {
    return r.error();
  }
  check_server_state();
  if (openai_only()) {
    return std::string();
  }
  auto tools = convert_tools();
  if (!tools) {
    return tools.error();
  }
  if (openai_only()) {
    return std::string();
  }
  auto tool_choice = convert_tool_choice();
  if (!tool_choice) {
    return tool_choice.error();
  }
  if (openai_only()) {
    return std::string();
  }
  auto format = convert_text_format();
  if (!format) {
    return format.error();
  }
  if (auto r = convert_input(); !r) {
    return r.error();
  }
  if (openai_only()) {
    return std::string();
  }
  if (messages_.empty()) {
    return invalid("input", "expected at least one input item (or instructions)");
  }

  std::string out;
  json_writer w(out);
  w.start_object();
  w.key("model").string(model);
  w.key("messages").start_array();
  for (const auto& m : messages_) {
    w.start_object();
    w.key("role").string(m.role);
    w.key("content");
    if (m.content.empty()) {
      w.null();
    } else {
      w.raw(m.content, m.content.front() == '[' ? rapidjson::kArrayType : rapidjson::kStringType);
    }
    if (!m.tool_calls.empty()) {
      w.key("tool_calls").start_array();
      for (const auto& c : m.tool_calls) {
        w.raw(c);
      }
      w.end_array();
    }
    if (!m.tool_call_id.empty()) {
      w.key("tool_call_id").string(m.tool_call_id);
    }
    w.end_object();
  }
  w.end_array();
  if (stream) {
    w.key("stream").boolean(true);
    w.key("stream_options").start_object().key("include_usage").boolean(true).end_object();
  }
  // max_completion_tokens: OpenAI's own name; the other OpenAI-style dialects rename it to
  // max_tokens (dialect.cpp) and the Anthropic encoder reads it first.
  if (const Value* v = present(root_, "max_output_tokens")) {
    w.key("max_completion_tokens").value(*v);
  }
  for (std::string_view k : {"temperature", "top_p"}) {
    if (const Value* v = present(root_, k)) {
      w.key(k).value(*v);
    }
  }
  if (!tools->empty()) {
    w.key("tools").raw(*tools, rapidjson::kArrayType);
    if (!tool_choice->empty()) {
      w.key("tool_choice")
          .raw(*tool_choice,
               (*tool_choice)[0] == '"' ? rapidjson::kStringType : rapidjson::kObjectType);
    }
    if (const Value* v = present(root_, "parallel_tool_calls")) {
      w.key("parallel_tool_calls").value(*v);
    }
  }
  if (!format->empty()) {
    w.key("response_format").raw(*format);
  }
  if (const Value* v = present(root_, "user")) {
    w.key("user").value(*v);
  }
  w.end_object();
  w.out();
  return out;
}

// -- the Response object --------------------------------------------------------------------------

struct usage_fields {
  std::int64_t input = 0;
  std::int64_t cached = 0;
  std::int64_t output = 0;
  std::int64_t reasoning = 0;
  std::int64_t total = 0;
};

usage_fields from_usage(const ib::usage& u) {
  return usage_fields{u.prompt_tokens, u.cached_tokens, u.completion_tokens, 0, u.total_tokens};
}

struct content_part {
  bool refusal = false;
  std::string text;
};

/// One output item: a message (parts) or a function call.
struct output_item {
  bool is_call = false;
  std::string id;
  std::vector<content_part> parts;  // message
  std::string call_id;              // function call
  std::string name;
  std::string arguments;
};

struct response_state {
  std::string id;
  std::int64_t created_at = 0;
  std::string model;
  std::string_view status = "in_progress";  ///< in_progress, completed, incomplete
  std::string_view incomplete_reason;       ///< max_output_tokens, content_filter
  std::vector<output_item> output;
  std::optional<usage_fields> usage;
};

void write_part(json_writer& w, const content_part& p) {
  w.start_object();
  if (p.refusal) {
    w.key("type").string("refusal");
    w.key("refusal").string(p.text);
  } else {
    w.key("type").string("output_text");
    w.key("annotations").start_array().end_array();
    w.key("logprobs").start_array().end_array();
    w.key("text").string(p.text);
  }
  w.end_object();
}

/// `item` with `status`; `full` false writes a freshly added item (no content, no arguments).
void write_item(json_writer& w, const output_item& item, std::string_view status, bool full) {
  w.start_object();
  if (item.is_call) {
    w.key("type").string("function_call");
    w.key("id").string(item.id);
    w.key("call_id").string(item.call_id);
    w.key("name").string(item.name);
    w.key("arguments").string(full ? std::string_view(item.arguments) : std::string_view());
    w.key("status").string(status);
  } else {
    w.key("type").string("message");
    w.key("id").string(item.id);
    w.key("status").string(status);
    w.key("role").string("assistant");
    w.key("content").start_array();
    if (full) {
      for (const auto& p : item.parts) {
        write_part(w, p);
      }
    }
    w.end_array();
  }
  w.end_object();
}

/// `raw` (JSON we wrote) or, when empty, `fallback` (JSON text).
void raw_or(json_writer& w, const std::string& raw, std::string_view fallback) {
  w.raw(raw.empty() ? fallback : std::string_view(raw), rapidjson::kObjectType);
}

void write_response(json_writer& w, const request_facts& f, const response_state& s) {
  const bool finished = s.status != "in_progress";
  const std::string_view item_status = s.status == "incomplete" ? "incomplete" : "completed";
  w.start_object();
  w.key("id").string(s.id);
  w.key("object").string("response");
  w.key("created_at").integer(s.created_at);
  w.key("status").string(s.status);
  w.key("background").boolean(false);
  w.key("error").null();
  w.key("incomplete_details");
  if (s.incomplete_reason.empty()) {
    w.null();
  } else {
    w.start_object().key("reason").string(s.incomplete_reason).end_object();
  }
  w.key("instructions");
  raw_or(w, f.instructions, "null");
  w.key("max_output_tokens");
  raw_or(w, f.max_output_tokens, "null");
  w.key("max_tool_calls").null();
  w.key("model").string(s.model);
  w.key("output").start_array();
  if (finished) {
    for (const auto& item : s.output) {
      write_item(w, item, item_status, true);
    }
  }
  w.end_array();
  w.key("parallel_tool_calls");
  raw_or(w, f.parallel_tool_calls, "true");
  w.key("previous_response_id").null();
  w.key("reasoning");
  raw_or(w, f.reasoning, R"({"effort":null,"summary":null})");
  w.key("store").boolean(false);  // translated: the gateway keeps nothing, whatever was asked
  w.key("temperature");
  raw_or(w, f.temperature, "1.0");
  w.key("text");
  raw_or(w, f.text, R"({"format":{"type":"text"}})");
  w.key("tool_choice");
  raw_or(w, f.tool_choice, R"("auto")");
  w.key("tools");
  raw_or(w, f.tools, "[]");
  w.key("top_p");
  raw_or(w, f.top_p, "1.0");
  w.key("truncation").string("disabled");
  w.key("usage");
  if (s.usage) {
    w.start_object();
    w.key("input_tokens").integer(s.usage->input);
    w.key("input_tokens_details").start_object();
    w.key("cached_tokens").integer(s.usage->cached);
    w.end_object();
    w.key("output_tokens").integer(s.usage->output);
    w.key("output_tokens_details").start_object();
    w.key("reasoning_tokens").integer(s.usage->reasoning);
    w.end_object();
    w.key("total_tokens").integer(s.usage->total);
    w.end_object();
  } else {
    w.null();
  }
  w.key("user");
  raw_or(w, f.user, "null");
  w.key("metadata");
  raw_or(w, f.metadata, "{}");
  w.end_object();
}

/// The Response status for a chat `finish_reason`, and the incomplete reason.
std::pair<std::string_view, std::string_view> status_for(std::string_view finish_reason) {
  if (finish_reason == "length") {
    return {"incomplete", "max_output_tokens"};
  }
  if (finish_reason == "content_filter") {
    return {"incomplete", "content_filter"};
  }
  return {"completed", {}};
}

// -- streaming: chat chunks -> Responses events ---------------------------------------------------

class chat_wrapper final : public chat_stream_wrapper {
 public:
  chat_wrapper(const chat_request& req, std::unique_ptr<stream_translator> inner)
      : chat_stream_wrapper(std::move(inner)), facts_(req.responses_facts) {}

 private:
  const request_facts& facts() const {
    static const request_facts none;
    return facts_ ? *facts_ : none;
  }

  void translate(stream_output& out) override {
    out.payload = out.payload || inner_out_.payload;
    if (inner_out_.tokens) {
      out.tokens = inner_out_.tokens;
      state_.usage = from_usage(*inner_out_.tokens);
    }
    if (!inner_out_.model.empty()) {
      out.model = inner_out_.model;
    }
    if (!ended_) {
      parser_.feed(inner_out_.client_bytes,
                   [&](const sse_event& ev) { on_chunk(ev.data, out.client_bytes); });
    }
    out.content = out.content || inner_out_.content;
    if (inner_out_.failure && !out.failure) {
      ended_ = true;
      out.failure = inner_out_.failure;
    }
    if (inner_out_.done && ended_) {
      out.done = true;
    }
  }

  // -- event writing --

  /// Writes one event: `event: type`, `data: {"type":…, <members>, "sequence_number":…}`.
  template <class F>
  void event(std::string& o, std::string_view type, F&& members) {
    o += "event: ";
    o += type;
    o += "\ndata: ";
    {
      json_writer w(o);
      w.start_object();
      w.key("type").string(type);
      members(w);
      w.key("sequence_number").integer(sequence_++);
      w.end_object();
    }
    o += "\n\n";
  }

  void response_event(std::string& o, std::string_view type) {
    event(o, type, [&](json_writer& w) {
      w.key("response");
      write_response(w, facts(), state_);
    });
  }

  void start(std::string& o, const Value& chunk) {
    started_ = true;
    const auto id = id_tail(json::get_string(chunk, "id").value_or(""));
    state_.id = "resp_" + id;
    message_id_ = "msg_" + id;
    state_.created_at = json::get_int(chunk, "created").value_or(0);
    state_.model = std::string(json::get_string(chunk, "model").value_or(""));
    response_event(o, "response.created");
    response_event(o, "response.in_progress");
  }

  output_item& open_message(std::string& o) {
    if (message_ && *message_ + 1 == state_.output.size()) {
      return state_.output[*message_];
    }
    close_message(o);
    output_item item;
    item.id = message_id_;
    if (message_count_ > 0) {
      item.id += "_" + std::to_string(message_count_);
    }
    ++message_count_;
    message_ = state_.output.size();
    state_.output.push_back(std::move(item));
    const std::size_t index = *message_;
    event(o, "response.output_item.added", [&](json_writer& w) {
      w.key("output_index").integer(static_cast<std::int64_t>(index));
      w.key("item");
      write_item(w, state_.output[index], "in_progress", false);
    });
    return state_.output[index];
  }

  void open_part(std::string& o, bool refusal) {
    output_item& item = open_message(o);
    if (!item.parts.empty() && item.parts.back().refusal == refusal && part_open_) {
      return;
    }
    close_part(o);
    item.parts.push_back(content_part{refusal, {}});
    part_open_ = true;
    const std::size_t part = item.parts.size() - 1;
    event(o, "response.content_part.added", [&](json_writer& w) {
      w.key("item_id").string(item.id);
      w.key("output_index").integer(static_cast<std::int64_t>(*message_));
      w.key("content_index").integer(static_cast<std::int64_t>(part));
      w.key("part");
      write_part(w, content_part{refusal, {}});
    });
  }

  void close_part(std::string& o) {
    if (!message_ || !part_open_) {
      return;
    }
    part_open_ = false;
    const output_item& item = state_.output[*message_];
    const content_part& p = item.parts.back();
    const auto part = static_cast<std::int64_t>(item.parts.size() - 1);
    const auto index = static_cast<std::int64_t>(*message_);
    event(o, p.refusal ? "response.refusal.done" : "response.output_text.done",
          [&](json_writer& w) {
            w.key("item_id").string(item.id);
            w.key("output_index").integer(index);
            w.key("content_index").integer(part);
            if (p.refusal) {
              w.key("refusal").string(p.text);
            } else {
              w.key("text").string(p.text);
              w.key("logprobs").start_array().end_array();
            }
          });
    event(o, "response.content_part.done", [&](json_writer& w) {
      w.key("item_id").string(item.id);
      w.key("output_index").integer(index);
      w.key("content_index").integer(part);
      w.key("part");
      write_part(w, p);
    });
  }

  void close_message(std::string& o) {
    if (!message_) {
      return;
    }
    close_part(o);
    const std::size_t index = *message_;
    message_.reset();
    event(o, "response.output_item.done", [&](json_writer& w) {
      w.key("output_index").integer(static_cast<std::int64_t>(index));
      w.key("item");
      write_item(w, state_.output[index], item_status(), true);
    });
  }

  void close_call(std::string& o, std::size_t index) {
    const output_item& item = state_.output[index];
    event(o, "response.function_call_arguments.done", [&](json_writer& w) {
      w.key("item_id").string(item.id);
      w.key("output_index").integer(static_cast<std::int64_t>(index));
      w.key("name").string(item.name);
      w.key("arguments").string(item.arguments);
    });
    event(o, "response.output_item.done", [&](json_writer& w) {
      w.key("output_index").integer(static_cast<std::int64_t>(index));
      w.key("item");
      write_item(w, item, item_status(), true);
    });
  }

  std::string_view item_status() const {
    return state_.status == "incomplete" ? "incomplete" : "completed";
  }

  void text_delta(std::string& o, std::string_view text, bool refusal) {
    if (text.empty()) {
      return;
    }
    open_part(o, refusal);
    output_item& item = state_.output[*message_];
    item.parts.back().text += text;
    const auto part = static_cast<std::int64_t>(item.parts.size() - 1);
    event(o, refusal ? "response.refusal.delta" : "response.output_text.delta",
          [&](json_writer& w) {
            w.key("item_id").string(item.id);
            w.key("output_index").integer(static_cast<std::int64_t>(*message_));
            w.key("content_index").integer(part);
            w.key("delta").string(text);
            if (!refusal) {
              w.key("logprobs").start_array().end_array();
            }
          });
  }

  void tool_delta(std::string& o, const Value& call, std::int64_t position) {
    const std::int64_t index = json::get_int(call, "index").value_or(position);
    auto it =
        std::find_if(calls_.begin(), calls_.end(), [&](const auto& c) { return c.first == index; });
    const Value* fn = json::get_object(call, "function");
    if (it == calls_.end()) {
      close_message(o);
      output_item item;
      item.is_call = true;
      item.call_id = std::string(json::get_string(call, "id").value_or(""));
      if (item.call_id.empty()) {
        item.call_id = "call_" + id_tail(state_.id) + "_" + std::to_string(index);
      }
      item.id = "fc_" + id_tail(item.call_id);
      item.name = fn != nullptr ? std::string(json::get_string(*fn, "name").value_or("")) : "";
      calls_.emplace_back(index, state_.output.size());
      it = calls_.end() - 1;
      state_.output.push_back(std::move(item));
      event(o, "response.output_item.added", [&](json_writer& w) {
        w.key("output_index").integer(static_cast<std::int64_t>(it->second));
        w.key("item");
        write_item(w, state_.output[it->second], "in_progress", false);
      });
    }
    auto args = fn != nullptr ? json::get_string(*fn, "arguments") : std::nullopt;
    if (!args || args->empty()) {
      return;
    }
    output_item& item = state_.output[it->second];
    item.arguments += *args;
    event(o, "response.function_call_arguments.delta", [&](json_writer& w) {
      w.key("item_id").string(item.id);
      w.key("output_index").integer(static_cast<std::int64_t>(it->second));
      w.key("delta").string(*args);
    });
  }

  void end(std::string& o) {
    ended_ = true;
    auto [status, reason] = status_for(finish_reason_);
    state_.status = status;
    state_.incomplete_reason = reason;
    close_message(o);
    for (const auto& call : calls_) {
      close_call(o, call.second);
    }
    response_event(o, status == "completed" ? "response.completed" : "response.incomplete");
  }

  void on_chunk(std::string_view data, std::string& o) {
    if (ended_) {
      return;
    }
    if (trim(data) == "[DONE]") {
      if (!started_) {
        start(o, Value(rapidjson::kObjectType));
      }
      end(o);
      return;
    }
    rapidjson::Document doc;
    if (!json::parse_fast(doc, data) || !doc.IsObject()) {
      return;  // the inner translator writes only JSON chunks
    }
    if (!started_) {
      start(o, doc);
    }
    const Value* choices = json::get_array(doc, "choices");
    if (choices == nullptr) {
      return;
    }
    for (const auto& choice : choices->GetArray()) {
      if (json::get_int(choice, "index").value_or(0) != 0) {
        continue;  // n is 1 in a translated request
      }
      if (const Value* delta = json::get_object(choice, "delta")) {
        if (auto text = json::get_string(*delta, "content")) {
          text_delta(o, *text, false);
        }
        if (auto refusal = json::get_string(*delta, "refusal")) {
          text_delta(o, *refusal, true);
        }
        if (const Value* calls = json::get_array(*delta, "tool_calls")) {
          std::int64_t position = 0;
          for (const auto& call : calls->GetArray()) {
            tool_delta(o, call, position++);
          }
        }
      }
      if (auto fr = json::get_string(choice, "finish_reason"); fr && !fr->empty()) {
        finish_reason_.assign(*fr);
      }
    }
  }

  std::shared_ptr<const request_facts> facts_;
  sse_parser parser_;
  response_state state_;
  std::string message_id_;
  std::optional<std::size_t> message_;  ///< output index of the open message item
  std::size_t message_count_ = 0;
  bool part_open_ = false;
  std::vector<std::pair<std::int64_t, std::size_t>> calls_;  ///< chat index -> output index
  std::string finish_reason_;
  std::int64_t sequence_ = 0;
  bool started_ = false;
  bool ended_ = false;
};

// -- native streams -------------------------------------------------------------------------------

/// The OpenAI envelope for a Responses error object (`{code, message, type?, param?}`).
std::string envelope_of(const Value* err, std::string_view fallback_message) {
  std::string_view message = fallback_message;
  std::string_view type = "server_error";
  std::string_view code;
  std::string_view param;
  if (err != nullptr) {
    message = json::get_string(*err, "message").value_or(fallback_message);
    code = json::get_string(*err, "code").value_or("");
    type = json::get_string(*err, "type").value_or(code.empty() ? "server_error" : code);
    param = json::get_string(*err, "param").value_or("");
  }
  if (message.size() > max_error_message_bytes) {
    message = message.substr(0, max_error_message_bytes);
  }
  return envelope(message, type, param, code);
}

std::optional<ib::usage> read_response_usage(const Value& response) {
  const Value* u = json::get_object(response, "usage");
  if (u == nullptr) {
    return std::nullopt;
  }
  ib::usage out;
  out.prompt_tokens = json::get_int(*u, "input_tokens").value_or(0);
  out.completion_tokens = json::get_int(*u, "output_tokens").value_or(0);
  out.total_tokens =
      json::get_int(*u, "total_tokens").value_or(out.prompt_tokens + out.completion_tokens);
  if (const Value* d = json::get_object(*u, "input_tokens_details")) {
    out.cached_tokens = json::get_int(*d, "cached_tokens").value_or(0);
  }
  return out;
}

class native_translator final : public stream_translator {
 public:
  explicit native_translator(std::string_view upstream_model) : model_(upstream_model) {}

  void feed(std::string_view bytes, stream_output& out) override {
    for (char c : bytes) {
      if (finished()) {
        break;
      }
      raw_.push_back(c);
      const bool ok =
          parser_.feed(std::string_view(&c, 1), [&](const sse_event& ev) { on_event(ev, out); });
      if ((!ok || raw_.size() > max_raw_bytes) && !finished()) {
        fail(out, outcome::bad_response,
             envelope("upstream sent an oversized stream event", "upstream_error"));
      }
    }
    publish(out);
  }

  void finish(stream_output& out) override {
    if (!finished() && parser_.has_partial()) {
      raw_ += "\n\n";
      parser_.feed("\n\n", [&](const sse_event& ev) { on_event(ev, out); });
    }
    if (!finished()) {
      fail(out, outcome::bad_response,
           envelope("upstream stream ended before completion", "upstream_error"));
    }
    publish(out);
  }

 private:
  static constexpr std::size_t max_raw_bytes = 16 * 1024 * 1024;

  bool finished() const noexcept { return done_ || failed_; }

  void publish(stream_output& out) const {
    out.content = out.content || content_;
    out.done = out.done || done_;
    if (usage_) {
      out.tokens = usage_;
    }
    if (!model_.empty() && out.model != model_) {
      out.model = model_;
    }
  }

  void fail(stream_output& out, outcome result, std::string env) {
    failed_ = true;
    stream_failure f;
    f.result = result;
    f.status = 502;
    f.envelope = std::move(env);
    out.failure = std::move(f);
  }

  void on_event(const sse_event& ev, stream_output& out) {
    std::string raw = std::move(raw_);
    raw_.clear();
    if (finished()) {
      return;
    }
    if (trim(ev.data).empty()) {
      return;  // nothing to pass on: a keep-alive
    }
    out.payload = true;
    rapidjson::Document doc;
    if (!json::parse_fast(doc, ev.data) || !doc.IsObject()) {
      fail(out, outcome::bad_response,
           envelope("upstream sent an invalid stream event", "upstream_error"));
      return;
    }
    std::string_view type = json::get_string(doc, "type").value_or(ev.event);
    if (type == "error" || ev.event == "error") {
      const Value* err = json::get_object(doc, "error");
      fail(out, outcome::server_error,
           envelope_of(err != nullptr ? err : &doc, "upstream reported an error"));
      return;
    }
    if (type == "response.failed") {
      const Value* response = json::get_object(doc, "response");
      const Value* err = response != nullptr ? json::get_object(*response, "error") : nullptr;
      fail(out, outcome::server_error, envelope_of(err, "upstream reported a failed response"));
      return;
    }
    if (type == "response.output_text.delta" || type == "response.refusal.delta"
        || type == "response.function_call_arguments.delta") {
      content_ = true;
    } else if (type == "response.output_item.added") {
      const Value* item = json::get_object(doc, "item");
      if (item != nullptr && json::get_string(*item, "type").value_or("") == "function_call") {
        content_ = true;
      }
    }
    const bool terminal = type == "response.completed" || type == "response.incomplete";
    if (const Value* response = json::get_object(doc, "response")) {
      if (auto m = json::get_string(*response, "model"); m && !m->empty()) {
        model_.assign(*m);
      }
      if (terminal) {
        usage_ = read_response_usage(*response);
      }
    }
    out.client_bytes += raw;
    if (terminal) {
      content_ = true;
      done_ = true;
    }
  }

  sse_parser parser_;
  std::string raw_;  ///< the bytes of the event being read, as they came
  std::string model_;
  std::optional<ib::usage> usage_;
  bool content_ = false;
  bool done_ = false;
  bool failed_ = false;
};

}  // namespace

// -- the interface --------------------------------------------------------------------------------

result<chat_request> parse_request(std::string body, const parse_limits& limits) {
  parse_limits native_limits = limits;
  native_limits.require_messages = false;
  auto native = parse_chat_request(std::move(body), native_limits);
  if (!native) {
    return native;
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(native->body.data(), native->body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return error{errc::invalid_request, "the body is not a JSON object"};  // parsed just above
  }
  auto facts = std::make_shared<request_facts>();
  request_translator translator(doc, *facts);
  auto chat = translator.run(native->model, native->stream);
  if (!chat) {
    return std::move(chat).error();
  }
  chat_request out;
  if (facts->openai_only.empty()) {
    auto parsed = parse_chat_request(std::move(*chat), limits);
    if (!parsed) {
      error e = std::move(parsed).error();
      if (e.param.starts_with("messages")) {
        e.param = "input";  // the limit on messages counts input items
        e.message = "input: " + e.message;
      }
      return e;
    }
    out = std::move(*parsed);
  } else {
    out.model = native->model;
    out.stream = native->stream;
  }
  out.api = client_api::responses;
  out.native_body = std::move(native->body);
  out.native_members = std::move(native->members);
  out.responses_facts = std::move(facts);
  return out;
}

bool native_for(const config::provider_config& p) noexcept {
  return p.proto == config::protocol::openai && p.name == "openai";
}

result<upstream_request> encode_native(const config::provider_config& p, const chat_request& req,
                                       std::string_view upstream_model, std::string_view api_key) {
  return openai::make_request(p, req, "/responses", api_key,
                              patch_model(req.native_body, req.native_members, upstream_model));
}

decoded_response decode_native(const config::provider_config& p, const chat_request&,
                               std::string_view upstream_model, const upstream_response& res) {
  if (res.status < 200 || res.status >= 300) {
    return to_decoded(
        map_openai_style_error(dialect_for(p), p.name, res.status, res.content_type, res.body));
  }
  rapidjson::Document doc;
  if (!json::parse_fast(doc, res.body) || !doc.IsObject()
      || json::get_string(doc, "object").value_or("") != "response") {
    return to_decoded(invalid_response());
  }
  if (json::get_string(doc, "status").value_or("") == "failed") {
    decoded_response d;
    d.result = outcome::server_error;
    d.status = 502;
    d.body = envelope_of(json::get_object(doc, "error"), "upstream reported a failed response");
    return d;
  }
  decoded_response out;
  out.result = outcome::success;
  out.status = 200;
  out.body_is_input = true;
  out.model = std::string(json::get_string(doc, "model").value_or(upstream_model));
  out.tokens = read_response_usage(doc);
  return out;
}

std::unique_ptr<stream_translator> make_native_translator(const config::provider_config&,
                                                          const chat_request&,
                                                          std::string_view upstream_model) {
  return std::make_unique<native_translator>(upstream_model);
}

std::string from_chat_completion(const chat_request& req, std::string_view chat_completion) {
  response_state s;
  s.status = "completed";
  rapidjson::Document doc;
  if (json::parse_fast(doc, chat_completion) && doc.IsObject()) {
    const auto id = id_tail(json::get_string(doc, "id").value_or(""));
    s.id = "resp_" + id;
    s.created_at = json::get_int(doc, "created").value_or(0);
    s.model = std::string(json::get_string(doc, "model").value_or(""));
    if (auto u = openai::read_usage(doc)) {
      s.usage = from_usage(*u);
      if (const Value* usage = json::get_object(doc, "usage")) {
        if (const Value* d = json::get_object(*usage, "completion_tokens_details")) {
          s.usage->reasoning = json::get_int(*d, "reasoning_tokens").value_or(0);
        }
      }
    }
    const Value* choices = json::get_array(doc, "choices");
    const Value* choice = choices != nullptr && !choices->Empty() ? &(*choices)[0] : nullptr;
    const Value* message = choice != nullptr ? json::get_object(*choice, "message") : nullptr;
    if (choice != nullptr) {
      auto [status, reason] = status_for(json::get_string(*choice, "finish_reason").value_or(""));
      s.status = status;
      s.incomplete_reason = reason;
    }
    if (message != nullptr) {
      output_item text;
      text.id = "msg_" + id;
      auto content = json::get_string(*message, "content");
      auto refusal = json::get_string(*message, "refusal");
      if (content && !content->empty()) {
        text.parts.push_back(content_part{false, std::string(*content)});
      }
      if (refusal && !refusal->empty()) {
        text.parts.push_back(content_part{true, std::string(*refusal)});
      }
      const Value* calls = json::get_array(*message, "tool_calls");
      if (!text.parts.empty() || calls == nullptr || calls->Empty()) {
        if (text.parts.empty()) {
          text.parts.push_back(content_part{false, {}});
        }
        s.output.push_back(std::move(text));
      }
      if (calls != nullptr) {
        std::size_t n = 0;
        for (const auto& call : calls->GetArray()) {
          const Value* fn = json::get_object(call, "function");
          output_item item;
          item.is_call = true;
          item.call_id = std::string(json::get_string(call, "id").value_or(""));
          if (item.call_id.empty()) {
            item.call_id = "call_" + id + "_" + std::to_string(n);
          }
          item.id = "fc_" + id_tail(item.call_id);
          if (fn != nullptr) {
            item.name = std::string(json::get_string(*fn, "name").value_or(""));
            item.arguments = std::string(json::get_string(*fn, "arguments").value_or(""));
          }
          if (trim(item.arguments).empty()) {
            item.arguments = "{}";
          }
          s.output.push_back(std::move(item));
          ++n;
        }
      }
    }
  } else {
    s.id = "resp_ib";
  }
  std::string out;
  {
    json_writer w(out);
    write_response(w, facts_of(req), s);
  }
  return out;
}

std::unique_ptr<stream_translator> wrap_chat_translator(const chat_request& req,
                                                        std::unique_ptr<stream_translator> chat) {
  return std::make_unique<chat_wrapper>(req, std::move(chat));
}

std::string stream_error_event(const stream_failure& f) {
  std::optional<error_fields> fields = parse_error_body(f.envelope);
  std::string_view message = "the stream failed";
  std::string_view type = "server_error";
  std::string_view code;
  std::string_view param;
  if (fields) {
    if (!fields->message.empty()) {
      message = fields->message;
    }
    if (!fields->type.empty()) {
      type = fields->type;
    }
    code = fields->code;
    param = fields->param;
  }
  std::string out = "event: error\ndata: ";
  {
    json_writer w(out);
    w.start_object();
    w.key("type").string("error");
    w.key("code").string(code.empty() ? type : code);
    w.key("message").string(message);
    w.key("param").string_or_null(param);
    w.key("error").start_object();
    w.key("type").string(type);
    w.key("code").string_or_null(code);
    w.key("message").string(message);
    w.key("param").string_or_null(param);
    w.end_object();
    w.end_object();
  }
  out += "\n\n";
  return out;
}

}  // namespace ib::providers::responses
