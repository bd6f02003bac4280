#include "providers/anthropic_inbound.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/outcome.hpp"
#include "providers/anthropic_detail.hpp"
#include "providers/error_map.hpp"
#include "providers/front.hpp"
#include "providers/json.hpp"
#include "providers/openai.hpp"
#include "providers/sse.hpp"

namespace ib::providers::anthropic_inbound {

namespace {

using rapidjson::Value;
namespace detail = anthropic::detail;

/// Nesting allowed in JSON we re-serialise or re-parse. The client body was already
/// depth-checked against the configured limit; this only guards upstream answers.
constexpr int max_json_depth = 256;

/// Largest upstream error body handed to the client as it came (Anthropic's are a few hundred
/// bytes); a larger one is replaced by the envelope `map_error` wrote.
constexpr std::size_t max_passthrough_error_bytes = 64 * 1024;

using detail::index_path;
using detail::invalid;

/// The member `key` of `obj` unless it is absent or `null` (clients send `null` for "unset").
const Value* present(const Value& obj, std::string_view key) noexcept {
  auto* v = json::member(obj, key);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

/// Parses `text` (already depth-checked, or checked here) into `doc`; false when it is not a
/// JSON object.
bool parse_object(rapidjson::Document& doc, std::string_view text) {
  if (exceeds_depth(text, max_json_depth)) {
    return false;
  }
  doc.Parse<json::parse_flags>(text.data(), text.size());
  return !doc.HasParseError() && doc.IsObject();
}

/// True for Anthropic's error shape: `{"type":"error","error":{"type":…,"message":…}}`.
bool is_anthropic_error(const Value& doc) noexcept {
  auto type = json::get_string(doc, "type");
  auto* err = json::get_object(doc, "error");
  return type && *type == "error" && err != nullptr && json::get_string(*err, "type")
         && json::get_string(*err, "message");
}

/// Error types Anthropic defines (platform.claude.com/docs/api/errors and the SDK's
/// `ErrorType`, checked 2026-11-30).
bool is_anthropic_error_type(std::string_view t) noexcept {
  for (std::string_view known :
       {"invalid_request_error", "authentication_error", "billing_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error", "timeout_error", "api_error",
        "overloaded_error"}) {
    if (t == known) {
      return true;
    }
  }
  return false;
}

/// `id` with every byte outside `[A-Za-z0-9_-]` replaced by `_`, prefixed `msg_` (Anthropic's
/// message ids look like `msg_01X…`).
std::string message_id(std::string_view id) {
  std::string out = "msg_";
  if (id.empty()) {
    out += "ib";
    return out;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

// -- request: Anthropic Messages -> OpenAI chat completion ----------------------------------------

/// Builds the chat form of a Messages request (providers.md §2.1 read backwards) while
/// validating it. What only Anthropic can serve is left out and noted in `anthropic_only`.
class chat_form_builder {
 public:
  chat_form_builder(const Value& root, std::string& out) : root_(root), w_(out) {}

  result<void> run(std::string_view model, bool stream);

  std::string anthropic_only;  ///< the first reason the request needs Anthropic, or empty

 private:
  void needs_anthropic(std::string why) {
    if (anthropic_only.empty()) {
      anthropic_only = std::move(why);
    }
  }
  result<void> check_top_level();
  result<void> write_system();
  result<void> write_messages();
  result<void> write_user(const Value& content, const std::string& path);
  result<void> write_assistant(const Value& content, const std::string& path);
  /// A `text` block's text, or an error naming `path`.
  result<std::string_view> block_text(const Value& b, const std::string& path) const;
  /// An image block as an OpenAI `image_url` URL (data: URL for base64), or nullopt when only
  /// Anthropic can read it (a Files API id, a future source type).
  result<std::optional<std::string>> image_url(const Value& b, const std::string& path);
  /// Writes the `tools` member; returns how many function tools were written.
  result<std::size_t> write_tools();
  result<void> write_tool_choice(std::size_t function_tools);

  const Value& root_;
  json_writer w_;
  std::size_t messages_written_ = 0;
};

result<void> chat_form_builder::check_top_level() {
  auto* max_tokens = json::member(root_, "max_tokens");
  if (max_tokens == nullptr) {
    return invalid("max_tokens", "field required");
  }
  if (!max_tokens->IsInt64() || max_tokens->GetInt64() < 1) {
    return invalid("max_tokens", "expected an integer of at least 1");
  }
  for (std::string_view k : {"temperature", "top_p"}) {
    if (auto* v = present(root_, k);
        v != nullptr && !(v->IsNumber() && v->GetDouble() >= 0 && v->GetDouble() <= 1)) {
      return invalid(std::string(k), "expected a number from 0 to 1");
    }
  }
  if (auto* v = present(root_, "top_k"); v != nullptr && !(v->IsInt64() && v->GetInt64() >= 0)) {
    return invalid("top_k", "expected a non-negative integer");
  }
  if (auto* v = present(root_, "metadata"); v != nullptr && !v->IsObject()) {
    return invalid("metadata", "expected an object");
  }
  if (auto* v = present(root_, "stop_sequences")) {
    if (!v->IsArray()) {
      return invalid("stop_sequences", "expected an array of strings");
    }
    for (const auto& s : v->GetArray()) {
      if (!s.IsString()) {
        return invalid("stop_sequences", "expected an array of strings");
      }
    }
  }
  if (auto* v = present(root_, "mcp_servers"); v != nullptr && !(v->IsArray() && v->Empty())) {
    needs_anthropic("mcp_servers: remote MCP servers are run by Anthropic's API");
  }
  if (present(root_, "container") != nullptr) {
    needs_anthropic("container: code execution containers exist only on Anthropic");
  }
  if (present(root_, "output_format") != nullptr) {
    needs_anthropic("output_format: structured outputs are translated for Anthropic only");
  }
  if (auto* oc = present(root_, "output_config");
      oc != nullptr && oc->IsObject() && present(*oc, "format") != nullptr) {
    needs_anthropic("output_config.format: structured outputs are translated for Anthropic only");
  }
  return {};
}

result<std::string_view> chat_form_builder::block_text(const Value& b,
                                                       const std::string& path) const {
  auto text = json::get_string(b, "text");
  if (!text) {
    return invalid(path + ".text", "expected a string");
  }
  return *text;
}

result<void> chat_form_builder::write_system() {
  auto* system = present(root_, "system");
  if (system == nullptr) {
    return {};
  }
  std::string text;
  if (system->IsString()) {
    text = std::string(json::view(*system));
  } else if (system->IsArray()) {
    for (rapidjson::SizeType i = 0; i < system->Size(); ++i) {
      const Value& b = (*system)[i];
      auto path = index_path("system", i);
      auto type = json::get_string(b, "type");
      if (!type || *type != "text") {
        return invalid(path + ".type", "system blocks must be text blocks");
      }
      auto t = block_text(b, path);
      if (!t) {
        return t.error();
      }
      if (!text.empty()) {
        text += "\n\n";  // separate blocks stay separate paragraphs
      }
      text += *t;
    }
  } else {
    return invalid("system", "expected a string or an array of text blocks");
  }
  if (!text.empty()) {
    w_.start_object();
    w_.key("role").string("system");
    w_.key("content").string(text);
    w_.end_object();
    ++messages_written_;
  }
  return {};
}

result<std::optional<std::string>> chat_form_builder::image_url(const Value& b,
                                                                const std::string& path) {
  auto* source = json::get_object(b, "source");
  auto type = source != nullptr ? json::get_string(*source, "type") : std::nullopt;
  if (!type) {
    return invalid(path + ".source", "expected an object with a type");
  }
  if (*type == "base64") {
    auto media_type = json::get_string(*source, "media_type");
    auto data = json::get_string(*source, "data");
    if (!media_type || !data) {
      return invalid(path + ".source", "a base64 source needs media_type and data strings");
    }
    std::string url = "data:";
    url += *media_type;
    url += ";base64,";
    url += *data;
    return std::optional<std::string>(std::move(url));
  }
  if (*type == "url") {
    auto url = json::get_string(*source, "url");
    if (!url) {
      return invalid(path + ".source.url", "expected a string");
    }
    return std::optional<std::string>(std::string(*url));
  }
  needs_anthropic(path + ".source: images of source type \"" + std::string(*type)
                  + "\" can be read by Anthropic only");
  return std::optional<std::string>{};
}

result<void> chat_form_builder::write_user(const Value& content, const std::string& path) {
  if (content.IsString()) {
    w_.start_object();
    w_.key("role").string("user");
    w_.key("content").string(json::view(content));
    w_.end_object();
    ++messages_written_;
    return {};
  }
  // Tool results answer the assistant turn just before: they go first, as `tool` messages;
  // the turn's other blocks follow as one user message.
  std::string parts;  // the user message's content parts, written with their own writer
  json_writer pw(parts);
  pw.start_array();
  std::vector<std::string_view> texts;
  bool only_text = true;
  for (rapidjson::SizeType j = 0; j < content.Size(); ++j) {
    const Value& b = content[j];
    auto bpath = index_path(path, j);
    auto type = json::get_string(b, "type");
    if (!type) {
      return invalid(bpath + ".type", "expected a string");
    }
    if (*type == "text") {
      auto t = block_text(b, bpath);
      if (!t) {
        return t.error();
      }
      texts.push_back(*t);
      pw.start_object().key("type").string("text").key("text").string(*t).end_object();
    } else if (*type == "image") {
      auto url = image_url(b, bpath);
      if (!url) {
        return url.error();
      }
      if (*url) {
        only_text = false;
        pw.start_object().key("type").string("image_url");
        pw.key("image_url").start_object().key("url").string(**url).end_object();
        pw.end_object();
      }
    } else if (*type == "document") {
      auto* source = json::get_object(b, "source");
      auto stype = source != nullptr ? json::get_string(*source, "type") : std::nullopt;
      auto media_type = source != nullptr ? json::get_string(*source, "media_type") : std::nullopt;
      auto data = source != nullptr ? json::get_string(*source, "data") : std::nullopt;
      if (stype && *stype == "base64" && media_type && *media_type == "application/pdf" && data) {
        only_text = false;
        pw.start_object().key("type").string("file").key("file").start_object();
        pw.key("filename").string(json::get_string(b, "title").value_or("document.pdf"));
        pw.key("file_data").string("data:application/pdf;base64," + std::string(*data));
        pw.end_object().end_object();
      } else if (stype && *stype == "text" && data) {
        texts.push_back(*data);
        pw.start_object().key("type").string("text").key("text").string(*data).end_object();
      } else {
        needs_anthropic(bpath + ": this document source can be read by Anthropic only");
      }
    } else if (*type == "tool_result") {
      auto id = json::get_string(b, "tool_use_id");
      if (!id || id->empty()) {
        return invalid(bpath + ".tool_use_id", "expected a non-empty string");
      }
      std::string text;
      if (auto* c = present(b, "content")) {
        if (c->IsString()) {
          text = std::string(json::view(*c));
        } else if (c->IsArray()) {
          for (rapidjson::SizeType k = 0; k < c->Size(); ++k) {
            const Value& inner = (*c)[k];
            auto ipath = index_path(bpath + ".content", k);
            auto itype = json::get_string(inner, "type");
            if (itype && *itype == "text") {
              auto t = block_text(inner, ipath);
              if (!t) {
                return t.error();
              }
              if (!text.empty()) {
                text += '\n';
              }
              text += *t;
            } else if (!itype) {
              return invalid(ipath + ".type", "expected a string");
            } else {
              // OpenAI tool messages hold text only.
              needs_anthropic(ipath + ": tool results with " + std::string(*itype)
                              + " blocks can be read by Anthropic only");
            }
          }
        } else {
          return invalid(bpath + ".content", "expected a string or an array of blocks");
        }
      }
      if (auto is_error = json::get_bool(b, "is_error"); is_error && *is_error) {
        text = "Error: " + text;  // OpenAI tool messages have no error flag
      }
      w_.start_object();
      w_.key("role").string("tool");
      w_.key("tool_call_id").string(*id);
      w_.key("content").string(text);
      w_.end_object();
      ++messages_written_;
    } else if (*type == "tool_use" || *type == "thinking" || *type == "redacted_thinking") {
      return invalid(bpath + ".type",
                     "\"" + std::string(*type) + "\" blocks belong in assistant messages");
    } else {
      needs_anthropic(bpath + ": \"" + std::string(*type)
                      + "\" blocks can be read by Anthropic only");
    }
  }
  pw.end_array();
  if (texts.empty() && only_text) {
    return {};  // nothing but tool results (or blocks only Anthropic reads)
  }
  w_.start_object();
  w_.key("role").string("user");
  w_.key("content");
  if (only_text) {
    std::string joined;
    for (auto t : texts) {
      if (!joined.empty()) {
        joined += '\n';
      }
      joined += t;
    }
    w_.string(joined);  // a string: every OpenAI-compatible provider takes one
  } else {
    w_.raw(pw.out(), rapidjson::kArrayType);
  }
  w_.end_object();
  ++messages_written_;
  return {};
}

result<void> chat_form_builder::write_assistant(const Value& content, const std::string& path) {
  if (content.IsString()) {
    w_.start_object();
    w_.key("role").string("assistant");
    w_.key("content").string(json::view(content));
    w_.end_object();
    ++messages_written_;
    return {};
  }
  std::string text;
  std::string calls;
  json_writer cw(calls);
  cw.start_array();
  std::size_t call_count = 0;
  std::string args;
  for (rapidjson::SizeType j = 0; j < content.Size(); ++j) {
    const Value& b = content[j];
    auto bpath = index_path(path, j);
    auto type = json::get_string(b, "type");
    if (!type) {
      return invalid(bpath + ".type", "expected a string");
    }
    if (*type == "text") {
      auto t = block_text(b, bpath);
      if (!t) {
        return t.error();
      }
      text += *t;
    } else if (*type == "tool_use") {
      auto id = json::get_string(b, "id");
      auto name = json::get_string(b, "name");
      auto* input = json::member(b, "input");
      if (!id || id->empty()) {
        return invalid(bpath + ".id", "expected a non-empty string");
      }
      if (!name || name->empty()) {
        return invalid(bpath + ".name", "expected a non-empty string");
      }
      if (input == nullptr || !input->IsObject()) {
        return invalid(bpath + ".input", "expected an object");
      }
      args.clear();
      json_writer(args).value(*input);
      cw.start_object();
      cw.key("id").string(*id);
      cw.key("type").string("function");
      cw.key("function").start_object();
      cw.key("name").string(*name);
      cw.key("arguments").string(args);  // JSON text in a string, as OpenAI sends it
      cw.end_object();
      cw.end_object();
      ++call_count;
    } else if (*type == "thinking" || *type == "redacted_thinking") {
      // Signed reasoning of an earlier Anthropic turn: meaningless to other providers.
    } else if (*type == "tool_result" || *type == "image" || *type == "document") {
      return invalid(bpath + ".type",
                     "\"" + std::string(*type) + "\" blocks belong in user messages");
    } else {
      needs_anthropic(bpath + ": \"" + std::string(*type)
                      + "\" blocks can be read by Anthropic only");
    }
  }
  cw.end_array();
  if (text.empty() && call_count == 0) {
    return {};
  }
  w_.start_object();
  w_.key("role").string("assistant");
  w_.key("content");
  if (text.empty()) {
    w_.null();
  } else {
    w_.string(text);
  }
  if (call_count > 0) {
    w_.key("tool_calls").raw(cw.out(), rapidjson::kArrayType);
  }
  w_.end_object();
  ++messages_written_;
  return {};
}

result<void> chat_form_builder::write_messages() {
  auto* messages = json::get_array(root_, "messages");
  if (messages == nullptr || messages->Empty()) {
    return invalid("messages", "expected a non-empty array");
  }
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    auto path = index_path("messages", i);
    if (!m.IsObject()) {
      return invalid(path, "expected an object");
    }
    auto role = json::get_string(m, "role");
    if (!role || (*role != "user" && *role != "assistant")) {
      return invalid(path + ".role",
                     "expected \"user\" or \"assistant\" (the system prompt is the top-level "
                     "`system` field)");
    }
    auto* content = json::member(m, "content");
    if (content == nullptr || !(content->IsString() || content->IsArray())) {
      return invalid(path + ".content", "expected a string or an array of content blocks");
    }
    auto r = *role == "user" ? write_user(*content, path + ".content")
                             : write_assistant(*content, path + ".content");
    if (!r) {
      return r;
    }
  }
  return {};
}

result<std::size_t> chat_form_builder::write_tools() {
  auto* tools = present(root_, "tools");
  if (tools == nullptr) {
    return std::size_t{0};
  }
  if (!tools->IsArray()) {
    return invalid("tools", "expected an array");
  }
  std::string buf;
  json_writer tw(buf);
  tw.start_array();
  std::size_t n = 0;
  for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
    const Value& t = (*tools)[i];
    auto path = index_path("tools", i);
    if (!t.IsObject()) {
      return invalid(path, "expected an object");
    }
    auto type = json::get_string(t, "type");
    if (type && *type != "custom") {
      // A server tool (web_search_…, code_execution_…, bash_…, text_editor_…, computer_…).
      needs_anthropic(path + ": the \"" + std::string(*type) + "\" tool is run by Anthropic");
      continue;
    }
    auto name = json::get_string(t, "name");
    if (!name || name->empty()) {
      return invalid(path + ".name", "expected a non-empty string");
    }
    auto* schema = json::member(t, "input_schema");
    if (schema == nullptr || !schema->IsObject()) {
      return invalid(path + ".input_schema", "expected a JSON Schema object");
    }
    tw.start_object();
    tw.key("type").string("function");
    tw.key("function").start_object();
    tw.key("name").string(*name);
    if (auto desc = json::get_string(t, "description"); desc && !desc->empty()) {
      tw.key("description").string(*desc);
    }
    tw.key("parameters").value(*schema);
    if (auto strict = json::get_bool(t, "strict")) {
      tw.key("strict").boolean(*strict);  // both APIs: the input must follow the schema
    }
    tw.end_object();
    tw.end_object();
    ++n;
  }
  tw.end_array();
  if (n > 0) {
    w_.key("tools").raw(tw.out(), rapidjson::kArrayType);
  }
  return n;
}

result<void> chat_form_builder::write_tool_choice(std::size_t function_tools) {
  auto* tc = present(root_, "tool_choice");
  if (tc == nullptr) {
    return {};
  }
  auto type = tc->IsObject() ? json::get_string(*tc, "type") : std::nullopt;
  if (!type || (*type != "auto" && *type != "any" && *type != "tool" && *type != "none")) {
    return invalid("tool_choice.type", "expected \"auto\", \"any\", \"tool\" or \"none\"");
  }
  auto name = json::get_string(*tc, "name");
  if (*type == "tool" && (!name || name->empty())) {
    return invalid("tool_choice.name", "expected a non-empty string");
  }
  if (function_tools == 0) {
    return {};  // OpenAI refuses tool_choice without tools
  }
  w_.key("tool_choice");
  if (*type == "tool") {
    w_.start_object();
    w_.key("type").string("function");
    w_.key("function").start_object().key("name").string(*name).end_object();
    w_.end_object();
  } else {
    w_.string(*type == "any" ? "required" : *type);
  }
  if (auto d = json::get_bool(*tc, "disable_parallel_tool_use"); d && *d && *type != "none") {
    w_.key("parallel_tool_calls").boolean(false);
  }
  return {};
}

result<void> chat_form_builder::run(std::string_view model, bool stream) {
  if (auto r = check_top_level(); !r) {
    return r;
  }
  w_.start_object();
  w_.key("model").string(model);
  w_.key("messages").start_array();
  if (auto r = write_system(); !r) {
    return r;
  }
  if (auto r = write_messages(); !r) {
    return r;
  }
  if (messages_written_ == 0) {
    // Only blocks that Anthropic alone reads (noted in anthropic_only): the chat form must
    // still be a valid request, though no other provider will be sent it.
    w_.start_object().key("role").string("user").key("content").string("").end_object();
  }
  w_.end_array();
  w_.key("max_completion_tokens").integer(json::member(root_, "max_tokens")->GetInt64());
  if (auto* stops = present(root_, "stop_sequences"); stops != nullptr && !stops->Empty()) {
    w_.key("stop").value(*stops);
  }
  for (std::string_view k : {"temperature", "top_p"}) {
    if (auto* v = present(root_, k)) {
      w_.key(k).value(*v);
    }
  }
  if (stream) {
    w_.key("stream").boolean(true);
    w_.key("stream_options").start_object().key("include_usage").boolean(true).end_object();
  }
  auto tools = write_tools();
  if (!tools) {
    return tools.error();
  }
  if (auto r = write_tool_choice(*tools); !r) {
    return r;
  }
  w_.end_object();
  return {};
}

std::shared_ptr<request_facts> make_facts(std::string version, std::string beta) {
  auto facts = std::make_shared<request_facts>();
  facts->anthropic_version = std::move(version);
  facts->anthropic_beta = std::move(beta);
  return facts;
}

/// Indexes `body` with the shared one-pass parser (`model` required, `stream` checked, depth
/// and message count bounded), not requiring `messages`.
result<chat_request> index_native(std::string body, const parse_limits& limits) {
  parse_limits any = limits;
  any.require_messages = false;
  return parse_chat_request(std::move(body), any);
}

// -- native answers -------------------------------------------------------------------------------

decoded_response bad_answer(std::string_view why) {
  mapped_error m = invalid_response();
  m.envelope =
      envelope("anthropic returned an invalid response: " + std::string(why), "upstream_error");
  return to_decoded(std::move(m));
}

/// Passes Anthropic's SSE through, event by event, watching it.
class native_translator final : public stream_translator {
 public:
  explicit native_translator(std::string_view upstream_model) : model_(upstream_model) {}

  void feed(std::string_view bytes, stream_output& out) override;
  void finish(stream_output& out) override;

 private:
  bool stopped() const noexcept { return done_ || failed_; }
  void on_event(const sse_event& ev, stream_output& out);
  void fail(stream_output& out, outcome o, int status, std::string body);
  void fail_bad(stream_output& out, std::string_view why);
  void sync(stream_output& out) const;

  /// Largest event (with the comments before it) held while it is read.
  static constexpr std::size_t max_event_bytes = 16 * 1024 * 1024;

  std::string model_;
  sse_parser parser_{max_event_bytes};
  std::string raw_;      ///< bytes of the event being read, forwarded once it is complete
  bool forward_ = true;  ///< whether the event just dispatched is to be forwarded
  bool started_ = false;
  bool content_ = false;
  bool done_ = false;
  bool failed_ = false;
  bool have_usage_ = false;
  detail::token_tally tally_;
};

void native_translator::feed(std::string_view bytes, stream_output& out) {
  // Events end at a line end: feed the parser one line piece at a time, so that the raw bytes
  // of each event are known when it is dispatched.
  while (!bytes.empty() && !stopped()) {
    auto end = bytes.find_first_of("\r\n");
    std::size_t take = end == std::string_view::npos ? bytes.size() : end + 1;
    auto piece = bytes.substr(0, take);
    bytes.remove_prefix(take);
    raw_.append(piece);
    bool dispatched = false;
    forward_ = true;
    bool ok = parser_.feed(piece, [&](const sse_event& ev) {
      dispatched = true;
      on_event(ev, out);
    });
    if (!ok || raw_.size() > max_event_bytes) {
      fail_bad(out, "stream event too large");
    } else if (dispatched) {
      if (forward_ && !failed_) {
        out.client_bytes += raw_;
      }
      raw_.clear();
    }
  }
  if (done_ && !bytes.empty()) {
    out.client_bytes.append(bytes);  // what follows message_stop (a line end), as it came
  } else if (done_ && !out.client_bytes.empty() && out.client_bytes.back() == '\r') {
    // message_stop ended at a CR whose LF has not been read (no more is read after the end):
    // a CRLF stream stays byte for byte, and for SSE a CR and a CRLF are the same line end.
    out.client_bytes.push_back('\n');
  }
  sync(out);
}

void native_translator::finish(stream_output& out) {
  if (!stopped()) {
    fail(out, outcome::bad_response, 502,
         envelope("upstream stream ended before completion", "upstream_error"));
  }
  sync(out);
}

void native_translator::sync(stream_output& out) const {
  out.content = out.content || content_;
  out.done = done_;
  if (started_) {
    out.model = model_;
  }
  if (have_usage_) {
    out.tokens = tally_.to_usage();
  }
}

void native_translator::fail(stream_output& out, outcome o, int status, std::string body) {
  failed_ = true;
  forward_ = false;
  out.failure = stream_failure{o, status, std::move(body)};
}

void native_translator::fail_bad(stream_output& out, std::string_view why) {
  fail(out, outcome::bad_response, 502,
       envelope("anthropic stream: " + std::string(why), "upstream_error"));
}

void native_translator::on_event(const sse_event& ev, stream_output& out) {
  if (stopped()) {
    forward_ = false;
    return;
  }
  if (ev.event == "ping") {
    return;  // keep-alive: forwarded, but not a payload
  }
  rapidjson::Document doc;
  if (!parse_object(doc, ev.data)) {
    out.payload = true;
    fail_bad(out, "unparseable event data");
    return;
  }
  std::string_view type = json::get_string(doc, "type").value_or(ev.event);
  if (type == "ping") {
    return;
  }
  out.payload = true;
  if (ev.event == "error" || type == "error") {
    // Classified as the chat translation does (detail::classify_stream_error); Anthropic's own
    // body is kept.
    auto fields = read_error_fields(doc);
    std::string etype = fields ? fields->type : std::string();
    std::string body = is_anthropic_error(doc)
                           ? std::string(ev.data)
                           : envelope(fields && !fields->message.empty() ? fields->message
                                                                         : "anthropic stream error",
                                      etype.empty() ? "upstream_error" : etype);
    const auto c = detail::classify_stream_error(etype);
    fail(out, c.result, c.status, std::move(body));
    return;
  }
  if (type == "message_start") {
    auto* message = json::get_object(doc, "message");
    if (message == nullptr) {
      fail_bad(out, "message_start without a message");
      return;
    }
    if (auto model = json::get_string(*message, "model"); model && !model->empty()) {
      model_ = std::string(*model);
    }
    if (auto* usage = json::get_object(*message, "usage")) {
      tally_.read(*usage);
      have_usage_ = true;
    }
    started_ = true;
    return;
  }
  if (!started_) {
    if (type == "content_block_start" || type == "content_block_delta"
        || type == "content_block_stop" || type == "message_delta" || type == "message_stop") {
      fail_bad(out, "event before message_start");
    }
    return;  // unknown events pass (forward compatible)
  }
  if (type == "content_block_start") {
    auto* block = json::get_object(doc, "content_block");
    auto btype = block != nullptr ? json::get_string(*block, "type") : std::nullopt;
    if (btype && *btype == "tool_use") {
      content_ = true;
    } else if (btype && *btype == "text") {
      if (auto text = json::get_string(*block, "text"); text && !text->empty()) {
        content_ = true;
      }
    }
  } else if (type == "content_block_delta") {
    auto* delta = json::get_object(doc, "delta");
    auto dtype = delta != nullptr ? json::get_string(*delta, "type") : std::nullopt;
    if (dtype && *dtype == "text_delta") {
      if (auto text = json::get_string(*delta, "text"); text && !text->empty()) {
        content_ = true;
      }
    } else if (dtype && *dtype == "input_json_delta") {
      content_ = true;
    }
  } else if (type == "message_delta") {
    if (auto* usage = json::get_object(doc, "usage")) {
      tally_.read(*usage);  // cumulative: the latest values win
      have_usage_ = true;
    }
    auto* delta = json::get_object(doc, "delta");
    if (delta != nullptr && json::get_string(*delta, "stop_reason")) {
      content_ = true;
    }
  } else if (type == "message_stop") {
    content_ = true;
    done_ = true;
  }
}

// -- translated streams ---------------------------------------------------------------------------

/// Turns the chat chunks of the inner translator into Anthropic's events.
class chat_wrapper final : public chat_stream_wrapper {
 public:
  explicit chat_wrapper(std::unique_ptr<stream_translator> inner)
      : chat_stream_wrapper(std::move(inner)) {}

 private:
  enum class block_kind : std::uint8_t { none, text, tool };
  struct tool_call {
    std::int64_t index = 0;  ///< the OpenAI tool call index
    int block = 0;           ///< the Anthropic content block index
  };

  void translate(stream_output& out) override;
  void on_chunk(const sse_event& ev, std::string& out);
  void start_message(std::string& out);
  void open_block(std::string& out, block_kind kind, std::string_view id = {},
                  std::string_view name = {});
  void close_block(std::string& out);
  void end_message(std::string& out);
  /// Writes `event: <type>\ndata: ` + what `write` writes (one JSON object) + `\n\n`.
  template <class Write>
  static void event(std::string& out, std::string_view type, Write&& write);

  sse_parser parser_;
  std::string id_;
  std::string model_;
  bool started_ = false;
  bool done_ = false;
  bool failed_ = false;
  block_kind open_ = block_kind::none;
  int open_index_ = -1;
  int next_index_ = 0;
  std::vector<tool_call> calls_;
  std::string_view stop_reason_ = "end_turn";
};

template <class Write>
void chat_wrapper::event(std::string& out, std::string_view type, Write&& write) {
  out += "event: ";
  out += type;
  out += "\ndata: ";
  {
    json_writer w(out);
    w.start_object();
    w.key("type").string(type);
    write(w);
    w.end_object();
  }
  out += "\n\n";
}

void chat_wrapper::translate(stream_output& out) {
  if (!done_ && !failed_ && !inner_out_.client_bytes.empty()) {
    parser_.feed(inner_out_.client_bytes, [&](const sse_event& ev) {
      if (!done_) {
        on_chunk(ev, out.client_bytes);
      }
    });
  }
  if (inner_out_.done && !done_ && !failed_) {
    end_message(out.client_bytes);  // an inner end without `[DONE]` (never, today): end too
  }
  out.payload = out.payload || inner_out_.payload;
  out.content = out.content || inner_out_.content;
  out.tokens = inner_out_.tokens;
  if (!inner_out_.model.empty()) {
    out.model = inner_out_.model;
  }
  if (inner_out_.failure && !failed_ && !done_) {
    failed_ = true;
    out.failure = inner_out_.failure;
  }
  out.done = done_;
}

void chat_wrapper::start_message(std::string& out) {
  started_ = true;
  event(out, "message_start", [&](json_writer& w) {
    w.key("message").start_object();
    w.key("id").string(message_id(id_));
    w.key("type").string("message");
    w.key("role").string("assistant");
    w.key("model").string(model_);
    w.key("content").start_array().end_array();
    w.key("stop_reason").null();
    w.key("stop_sequence").null();
    // OpenAI-style providers report usage at the end; message_delta carries all of it.
    w.key("usage").start_object();
    w.key("input_tokens").integer(0);
    w.key("output_tokens").integer(0);
    w.end_object();
    w.end_object();
  });
}

void chat_wrapper::open_block(std::string& out, block_kind kind, std::string_view id,
                              std::string_view name) {
  close_block(out);
  open_ = kind;
  open_index_ = next_index_++;
  event(out, "content_block_start", [&](json_writer& w) {
    w.key("index").integer(open_index_);
    w.key("content_block").start_object();
    if (kind == block_kind::text) {
      w.key("type").string("text");
      w.key("text").string("");
    } else {
      w.key("type").string("tool_use");
      w.key("id").string(id);
      w.key("name").string(name);
      w.key("input").start_object().end_object();
    }
    w.end_object();
  });
}

void chat_wrapper::close_block(std::string& out) {
  if (open_ == block_kind::none) {
    return;
  }
  event(out, "content_block_stop", [&](json_writer& w) { w.key("index").integer(open_index_); });
  open_ = block_kind::none;
}

void chat_wrapper::end_message(std::string& out) {
  if (!started_) {
    start_message(out);
  }
  close_block(out);
  auto tally = detail::token_tally::from_usage(inner_out_.tokens.value_or(ib::usage{}));
  event(out, "message_delta", [&](json_writer& w) {
    w.key("delta").start_object();
    w.key("stop_reason").string(stop_reason_);
    w.key("stop_sequence").null();
    w.end_object();
    w.key("usage");
    tally.write_anthropic_json(w);
  });
  event(out, "message_stop", [](json_writer&) {});
  done_ = true;
}

void chat_wrapper::on_chunk(const sse_event& ev, std::string& out) {
  if (ev.data == "[DONE]") {
    end_message(out);
    return;
  }
  rapidjson::Document doc;
  if (!parse_object(doc, ev.data)) {
    return;  // the inner translator wrote it: never happens
  }
  if (!started_) {
    id_ = std::string(json::get_string(doc, "id").value_or(""));
    model_ = std::string(json::get_string(doc, "model").value_or(inner_out_.model));
    start_message(out);
  }
  auto* choices = json::get_array(doc, "choices");
  if (choices == nullptr || choices->Empty()) {
    return;  // the usage chunk: usage comes from the inner translator
  }
  const Value& choice = (*choices)[0];
  if (auto* delta = json::get_object(choice, "delta")) {
    for (std::string_view k : {"content", "refusal"}) {
      auto text = json::get_string(*delta, k);
      if (!text || text->empty()) {
        continue;
      }
      if (open_ != block_kind::text) {
        open_block(out, block_kind::text);
      }
      event(out, "content_block_delta", [&](json_writer& w) {
        w.key("index").integer(open_index_);
        w.key("delta").start_object();
        w.key("type").string("text_delta");
        w.key("text").string(*text);
        w.end_object();
      });
      if (k == "refusal") {
        stop_reason_ = "refusal";
      }
    }
    if (auto* tcs = json::get_array(*delta, "tool_calls")) {
      for (const auto& tc : tcs->GetArray()) {
        std::int64_t index = json::get_int(tc, "index").value_or(0);
        auto* fn = json::get_object(tc, "function");
        auto it = std::find_if(calls_.begin(), calls_.end(),
                               [&](const tool_call& c) { return c.index == index; });
        if (it == calls_.end()) {
          std::string id(json::get_string(tc, "id").value_or(""));
          if (id.empty()) {
            id = "toolu_ib_" + std::to_string(calls_.size());
          }
          auto name = fn != nullptr ? json::get_string(*fn, "name").value_or("") : "";
          open_block(out, block_kind::tool, detail::tool_id(id), name);
          calls_.push_back({index, open_index_});
          it = calls_.end() - 1;
        }
        auto args = fn != nullptr ? json::get_string(*fn, "arguments") : std::nullopt;
        if (args && !args->empty()) {
          const int block = it->block;
          event(out, "content_block_delta", [&](json_writer& w) {
            w.key("index").integer(block);
            w.key("delta").start_object();
            w.key("type").string("input_json_delta");
            w.key("partial_json").string(*args);
            w.end_object();
          });
        }
      }
    }
  }
  if (auto finish = json::get_string(choice, "finish_reason"); finish && !finish->empty()) {
    close_block(out);
    if (stop_reason_ != "refusal") {
      stop_reason_ = detail::stop_reason(*finish);
    }
  }
}

}  // namespace

// -- parsing --------------------------------------------------------------------------------------

result<chat_request> parse_request(std::string body, const parse_limits& limits,
                                   std::string anthropic_version, std::string anthropic_beta) {
  auto native = index_native(std::move(body), limits);
  if (!native) {
    return native.error();
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(native->body.data(), native->body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return error{errc::invalid_request, "request body must be a JSON object"};  // indexed above
  }
  if (json::member(doc, "messages") == nullptr) {
    return invalid("messages", "field required");
  }
  std::string chat_body;
  chat_body.reserve(native->body.size() + 128);
  chat_form_builder builder(doc, chat_body);
  if (auto r = builder.run(native->model, native->stream); !r) {
    return r.error();
  }
  parse_limits chat_limits = limits;
  chat_limits.max_messages = 0;  // tool results may add messages; the client's count was bounded
  chat_limits.max_depth = limits.max_depth + 4;  // tools' schemas sit two levels deeper
  auto chat = parse_chat_request(std::move(chat_body), chat_limits);
  if (!chat) {
    return chat.error();
  }
  auto facts = make_facts(std::move(anthropic_version), std::move(anthropic_beta));
  if (!builder.anthropic_only.empty()) {
    facts->anthropic_only = std::move(builder.anthropic_only)
                            + ". Only Anthropic serves this request: use an anthropic/... model "
                              "or a tier whose providers include Anthropic.";
  }
  chat->api = client_api::messages;
  chat->model = std::move(native->model);
  chat->stream = native->stream;
  chat->native_body = std::move(native->body);
  chat->native_members = std::move(native->members);
  chat->messages_facts = std::move(facts);
  return chat;
}

result<chat_request> parse_count_tokens(std::string body, const parse_limits& limits,
                                        std::string anthropic_version, std::string anthropic_beta) {
  auto req = index_native(std::move(body), limits);
  if (!req) {
    return req.error();
  }
  if (!req->raw_value("messages")) {
    return invalid("messages", "field required");
  }
  req->stream = false;  // count_tokens has no stream
  req->include_usage = false;
  req->api = client_api::count_tokens;
  req->native_body = req->body;
  req->native_members = req->members;
  req->messages_facts = make_facts(std::move(anthropic_version), std::move(anthropic_beta));
  return req;
}

// -- native ---------------------------------------------------------------------------------------

result<upstream_request> encode_native(const config::provider_config& p, const chat_request& req,
                                       std::string_view upstream_model, std::string_view api_key) {
  auto body = patch_model(req.native_body, req.native_members, upstream_model);
  auto path = req.api == client_api::count_tokens ? std::string_view("/messages/count_tokens")
                                                  : std::string_view("/messages");
  auto out = openai::make_request(p, req, path, api_key, std::move(body));
  const auto* facts = req.messages_facts.get();
  out.headers.emplace_back("anthropic-version",
                           facts != nullptr && !facts->anthropic_version.empty()
                               ? facts->anthropic_version
                               : p.anthropic_version);
  if (facts != nullptr && !facts->anthropic_beta.empty()) {
    out.headers.emplace_back("anthropic-beta", facts->anthropic_beta);
  }
  return out;
}

decoded_response decode_native(const config::provider_config& /*p*/, const chat_request& req,
                               std::string_view upstream_model, const upstream_response& res) {
  if (res.status < 200 || res.status >= 300) {
    auto d = to_decoded(map_error("anthropic", res.status, res.content_type, res.body));
    if (res.body.size() <= max_passthrough_error_bytes) {
      rapidjson::Document doc;
      if (parse_object(doc, res.body) && is_anthropic_error(doc)) {
        d.body = std::string(res.body);  // the client gets Anthropic's own error
      }
    }
    return d;
  }
  rapidjson::Document doc;
  if (!parse_object(doc, res.body)) {
    return bad_answer("not a JSON object");
  }
  if (json::member(doc, "error") != nullptr) {
    return bad_answer("an error in a success");
  }
  decoded_response d;
  if (req.api == client_api::count_tokens) {
    if (!json::get_int(doc, "input_tokens")) {
      return bad_answer("no input_tokens");
    }
  } else {
    auto type = json::get_string(doc, "type");
    if ((type && *type != "message") || json::get_array(doc, "content") == nullptr) {
      return bad_answer("not a message");
    }
    if (auto* usage = json::get_object(doc, "usage")) {
      detail::token_tally tally;
      tally.read(*usage);
      d.tokens = tally.to_usage();
    }
  }
  auto model = json::get_string(doc, "model").value_or(upstream_model);
  d.result = outcome::success;
  d.status = res.status;
  d.body_is_input = true;
  d.model = std::string(model.empty() ? upstream_model : model);
  return d;
}

std::unique_ptr<stream_translator> make_native_translator(const config::provider_config& /*p*/,
                                                          const chat_request& /*req*/,
                                                          std::string_view upstream_model) {
  return std::make_unique<native_translator>(upstream_model);
}

// -- translated answers ---------------------------------------------------------------------------

std::string from_chat_completion(const chat_request& /*req*/, std::string_view chat_completion) {
  rapidjson::Document doc;
  if (!parse_object(doc, chat_completion)) {
    doc.SetObject();  // the decoder validated a chat.completion object: never happens
  }
  const Value& root = doc;
  const Value* message = nullptr;
  std::string_view finish;
  if (auto* choices = json::get_array(root, "choices"); choices != nullptr && !choices->Empty()) {
    message = json::get_object((*choices)[0], "message");
    finish = json::get_string((*choices)[0], "finish_reason").value_or("");
  }
  std::string_view stop = detail::stop_reason(finish);
  auto usage = openai::read_usage(root);

  std::string out;
  out.reserve(256 + chat_completion.size());
  json_writer w(out);
  w.start_object();
  w.key("id").string(message_id(json::get_string(root, "id").value_or("")));
  w.key("type").string("message");
  w.key("role").string("assistant");
  w.key("model").string(json::get_string(root, "model").value_or(""));
  w.key("content").start_array();
  if (message != nullptr) {
    auto text = json::get_string(*message, "content");
    if (text && !text->empty()) {
      w.start_object().key("type").string("text").key("text").string(*text).end_object();
    } else if (auto* parts = json::get_array(*message, "content")) {
      for (const auto& part : parts->GetArray()) {
        if (auto t = json::get_string(part, "text"); t && !t->empty()) {
          w.start_object().key("type").string("text").key("text").string(*t).end_object();
        }
      }
    }
    if (auto refusal = json::get_string(*message, "refusal"); refusal && !refusal->empty()) {
      w.start_object().key("type").string("text").key("text").string(*refusal).end_object();
      stop = "refusal";
    }
    if (auto* calls = json::get_array(*message, "tool_calls")) {
      std::size_t k = 0;
      for (const auto& call : calls->GetArray()) {
        auto* fn = json::get_object(call, "function");
        std::string id(json::get_string(call, "id").value_or(""));
        if (id.empty()) {
          id = "toolu_ib_" + std::to_string(k);
        }
        ++k;
        w.start_object();
        w.key("type").string("tool_use");
        w.key("id").string(detail::tool_id(id));
        w.key("name").string(fn != nullptr ? json::get_string(*fn, "name").value_or("") : "");
        w.key("input");
        rapidjson::Document args;
        auto text = fn != nullptr ? json::get_string(*fn, "arguments") : std::nullopt;
        if (text && parse_object(args, *text)) {
          w.value(args);
        } else {
          w.start_object().end_object();  // Anthropic's input is always an object
        }
        w.end_object();
      }
    }
  }
  w.end_array();
  w.key("stop_reason").string(stop);
  w.key("stop_sequence").null();
  w.key("usage");
  detail::token_tally::from_usage(usage.value_or(ib::usage{})).write_anthropic_json(w);
  w.end_object();
  return out;
}

std::unique_ptr<stream_translator> wrap_chat_translator(const chat_request& /*req*/,
                                                        std::unique_ptr<stream_translator> chat) {
  return std::make_unique<chat_wrapper>(std::move(chat));
}

// -- errors ---------------------------------------------------------------------------------------

std::string_view error_type(int status) noexcept {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      break;
  }
  return status >= 500 ? "api_error" : "invalid_request_error";
}

namespace {

/// Whether `error_type(status)` is a catch-all (not a type of that status of its own).
bool generic_status(int status) noexcept {
  switch (status) {
    case 400:
    case 401:
    case 402:
    case 403:
    case 404:
    case 413:
    case 429:
    case 503:
    case 529:
    case 504:
      return false;
    default:
      return true;
  }
}

/// `{"type":"error","error":{"type":type,"message":message[,"inferbridge_attempts":…]}}`.
std::string anthropic_error(std::string_view type, std::string_view message,
                            const Value* attempts) {
  std::string out;
  out.reserve(96 + message.size());
  json_writer w(out);
  w.start_object();
  w.key("type").string("error");
  w.key("error").start_object();
  w.key("type").string(type);
  w.key("message").string(message);
  if (attempts != nullptr) {
    w.key("inferbridge_attempts").value(*attempts);
  }
  w.end_object();
  w.end_object();
  return out;
}

}  // namespace

std::string error_body(const error& err, const std::vector<attempt_record>* attempts) {
  const auto type = error_type(http_status(err.code));
  if (attempts == nullptr) {
    return anthropic_error(type, err.message, nullptr);
  }
  // The attempts exactly as the OpenAI envelope writes them (core/request_record.cpp).
  rapidjson::Document env;
  auto text = to_envelope(err, *attempts);
  env.Parse<json::parse_flags>(text.data(), text.size());
  auto* e = env.IsObject() ? json::get_object(env, "error") : nullptr;
  return anthropic_error(type, err.message,
                         e != nullptr ? json::get_array(*e, "inferbridge_attempts") : nullptr);
}

std::string error_from_envelope(std::string body, int status) {
  rapidjson::Document doc;
  if (!parse_object(doc, body)) {
    return anthropic_error(error_type(status),
                           "the upstream answered HTTP " + std::to_string(status), nullptr);
  }
  if (is_anthropic_error(doc)) {
    return body;
  }
  auto* e = json::get_object(doc, "error");
  std::string_view message;
  std::string_view type = error_type(status);
  const Value* attempts = nullptr;
  if (e != nullptr) {
    message = json::get_string(*e, "message").value_or("");
    if (auto t = json::get_string(*e, "type");
        t && generic_status(status) && is_anthropic_error_type(*t)) {
      type = *t;
    }
    attempts = json::get_array(*e, "inferbridge_attempts");
  } else if (auto m = read_error_fields(doc)) {
    return anthropic_error(type, m->message, nullptr);
  }
  if (message.empty()) {
    return anthropic_error(type, "the upstream answered HTTP " + std::to_string(status), attempts);
  }
  return anthropic_error(type, message, attempts);
}

std::string stream_error_event(const stream_failure& f) {
  std::string body = error_from_envelope(f.envelope, f.status);
  if (body.find_first_of("\r\n") != std::string::npos) {
    // An upstream body that came pretty-printed: one `data:` line needs compact JSON.
    rapidjson::Document doc;
    doc.Parse<json::parse_flags>(body.data(), body.size());
    std::string compact;
    json_writer(compact).value(doc);
    body = std::move(compact);
  }
  std::string out = "event: error\ndata: ";
  out += body;
  out += "\n\n";
  return out;
}

}  // namespace ib::providers::anthropic_inbound
