#include "providers/openai.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/text.hpp"
#include "providers/error_map.hpp"
#include "providers/json.hpp"
#include "providers/sse.hpp"

namespace ib::providers::openai {

namespace {

/// Appends `v`, serialised compactly, to `out` (strings checked: see `json_writer::value`).
void write_json(const rapidjson::Value& v, std::string& out) {
  json_writer(out).value(v);
}

/// Appends `"model":<upstream_model>` to `out`, the one member of a spliced request body that
/// we generate (the string through the writer).
void append_model_member(std::string& out, std::string_view upstream_model) {
  out += R"("model":)";
  json_writer(out).string(upstream_model);
}

bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_null_or_false(std::string_view raw) noexcept {
  return raw == "null" || raw == "false";
}

bool nonempty_string(const rapidjson::Value& obj, std::string_view key) noexcept {
  auto s = json::get_string(obj, key);
  return s && !s->empty();
}

/// `s` holds a JSON value other than whitespace.
bool has_text(std::string_view s) noexcept {
  return !trim(s).empty();
}

/// Sets `call.function.arguments` to `"{}"` (adding the members when missing). The literal is
/// static, so no copy is made.
template <class Allocator>
void set_empty_object_arguments(rapidjson::Value& call, Allocator& alloc) {
  if (!call.IsObject()) {
    return;
  }
  auto fn = call.FindMember("function");
  if (fn == call.MemberEnd()) {
    call.AddMember("function", rapidjson::Value(rapidjson::kObjectType), alloc);
    fn = call.FindMember("function");
  }
  if (!fn->value.IsObject()) {
    return;
  }
  auto args = fn->value.FindMember("arguments");
  if (args == fn->value.MemberEnd()) {
    fn->value.AddMember("arguments", rapidjson::StringRef("{}"), alloc);
  } else {
    args->value.SetString(rapidjson::StringRef("{}"));
  }
}

// -- request encoding -----------------------------------------------------------------------------

/// `messages` with the nested rewrites of `d` applied, appended to `out`. False when the raw
/// text does not parse (impossible for a body parse_chat_request accepted).
bool append_rewritten_messages(const dialect& d, std::string_view raw, std::string& out) {
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(raw.data(), raw.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return false;
  }
  for (auto& msg : doc.GetArray()) {
    if (!msg.IsObject()) {
      continue;
    }
    if (d.developer_to_system) {
      for (auto& m : msg.GetObject()) {
        if (json::view(m.name) == "role" && json::view(m.value) == "developer") {
          m.value.SetString(rapidjson::StringRef("system"));
        }
      }
    }
    // EraseMember keeps the order of the remaining members (RemoveMember would not).
    // A repeated member is erased too.
    while (d.strip_message_names && msg.EraseMember("name")) {
      // nop
    }
    while (d.strip_reasoning_content && msg.EraseMember("reasoning_content")) {
      // nop
    }
  }
  write_json(doc, out);
  return true;
}

/// The client's `stream_options` with `include_usage` set to true, appended to `out`.
void append_stream_options_with_usage(std::string_view raw, std::string& out) {
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(raw.data(), raw.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    out += R"({"include_usage":true})";  // `null`: nothing of the client's to keep
    return;
  }
  bool found = false;
  for (auto& m : doc.GetObject()) {
    if (json::view(m.name) == "include_usage") {
      m.value.SetBool(true);
      found = true;
    }
  }
  if (!found) {
    doc.AddMember("include_usage", true, doc.GetAllocator());
  }
  write_json(doc, out);
}

}  // namespace

std::pair<std::string_view, std::string> auth_header(config::auth_style style,
                                                     std::string_view key) {
  switch (style) {
    case config::auth_style::x_api_key:
      return {"x-api-key", std::string(key)};
    case config::auth_style::api_subscription_key:
      return {"api-subscription-key", std::string(key)};
    case config::auth_style::bearer:
      break;
  }
  std::string value;
  value.reserve(7 + key.size());
  value += "Bearer ";
  value += key;
  return {"authorization", std::move(value)};
}

bool refuses_sampling(const config::provider_config& p, const chat_request& req,
                      std::string_view upstream_model) noexcept {
  bool reasoning = std::any_of(
      p.reasoning_models.begin(), p.reasoning_models.end(),
      [&](const std::string& prefix) { return upstream_model.substr(0, prefix.size()) == prefix; });
  if (!reasoning) {
    return false;
  }
  auto effort = req.raw_value("reasoning_effort");
  return !(effort && *effort == R"("none")");
}

result<std::string> encode_body(const dialect& d, const chat_request& req,
                                std::string_view upstream_model, bool drop_sampling) {
  if (d.require_single_choice && req.n != 1) {
    return error{errc::invalid_request,
                 "n: " + std::string(d.name) + " supports only one choice (n=1)", "n"};
  }
  std::string scratch;
  // First pass: refusals, and what later members depend on.
  bool has_max_tokens = false;
  std::size_t last_stream_options = req.members.size();
  for (std::size_t i = 0; i < req.members.size(); ++i) {
    const member_span& m = req.members[i];
    std::string_view name = unescape_key(req.key(m), scratch);
    if (rejects_field(d, name) && !is_null_or_false(req.raw_value(m))) {
      std::string field(name);
      return error{errc::invalid_request, field + ": not supported by " + std::string(d.name),
                   std::move(field)};
    }
    if (name == "max_tokens") {
      has_max_tokens = true;
    } else if (name == "stream_options") {
      last_stream_options = i;
    }
  }
  const bool rewrite_messages = (d.developer_to_system && req.has_developer_messages)
                                || (d.strip_message_names && req.has_message_names)
                                || (d.strip_reasoning_content && req.has_reasoning_content);
  const bool want_usage = req.stream && d.force_include_usage && d.send_stream_options;

  // Patched, not rebuilt: the client's members (already parsed and validated) are spliced as
  // they came, with their whitespace and escapes; the one value we generate, `model`, is
  // written by json_writer (see append_model_member).
  std::string out;
  out.reserve(req.body.size() + upstream_model.size() + 48);
  out.push_back('{');
  bool first = true;
  auto separate = [&] {
    if (!first) {
      out.push_back(',');
    }
    first = false;
  };
  bool model_written = false;
  bool stream_options_written = false;
  for (std::size_t i = 0; i < req.members.size(); ++i) {
    const member_span& m = req.members[i];
    std::string_view name = unescape_key(req.key(m), scratch);
    std::string_view raw = req.raw_value(m);
    if (name == "model") {
      if (!model_written) {
        separate();
        append_model_member(out, upstream_model);
        model_written = true;
      }
      continue;
    }
    if (drops_field(d, name) || rejects_field(d, name)) {
      continue;  // a rejected field got here only as null or false
    }
    if (drop_sampling && (name == "temperature" || name == "top_p")) {
      continue;
    }
    if (name == "max_completion_tokens" && d.max_completion_to_max_tokens) {
      if (!has_max_tokens) {
        separate();
        out += R"("max_tokens":)";
        out += raw;
      }
      continue;
    }
    if (name == "stream_options") {
      // Only the last copy counts (as for parse_chat_request); never without `stream:true`
      // except for the pass-through dialect, which forwards what the client sent.
      if (i != last_stream_options || !d.send_stream_options || (!req.stream && !d.passthrough)) {
        continue;
      }
      separate();
      if (want_usage && !req.include_usage) {
        out += R"("stream_options":)";
        append_stream_options_with_usage(raw, out);
      } else {
        out.append(req.body, m.begin, m.value_end - m.begin);
      }
      stream_options_written = true;
      continue;
    }
    if (name == "messages" && rewrite_messages) {
      separate();
      out += R"("messages":)";
      if (!append_rewritten_messages(d, raw, out)) {
        return error{errc::invalid_request, "messages: expected an array", "messages"};
      }
      continue;
    }
    separate();
    out.append(req.body, m.begin, m.value_end - m.begin);
  }
  if (!model_written) {
    separate();
    append_model_member(out, upstream_model);
  }
  if (want_usage && !stream_options_written) {
    separate();
    out += R"("stream_options":{"include_usage":true})";
  }
  out.push_back('}');
  return out;
}

upstream_request make_request(const config::provider_config& p, const chat_request& req,
                              std::string_view path, std::string_view api_key, std::string body) {
  upstream_request out;
  out.target.reserve(p.endpoint.path.size() + path.size());
  out.target += p.endpoint.path;
  out.target += path;
  out.headers.reserve(4);
  out.headers.emplace_back("content-type", "application/json");
  out.headers.emplace_back("accept", req.stream ? "text/event-stream" : "application/json");
  out.headers.push_back(auth_header(p.auth, api_key));
  out.body = std::move(body);
  return out;
}

result<upstream_request> encode_request(const config::provider_config& p, const chat_request& req,
                                        std::string_view upstream_model, std::string_view api_key) {
  auto body =
      encode_body(dialect_for(p), req, upstream_model, refuses_sampling(p, req, upstream_model));
  if (!body) {
    return std::move(body).error();
  }
  return make_request(p, req, "/chat/completions", api_key, std::move(*body));
}

// -- usage ----------------------------------------------------------------------------------------

std::optional<ib::usage> read_usage(const rapidjson::Value& obj) noexcept {
  const rapidjson::Value* u = json::get_object(obj, "usage");
  if (u == nullptr) {
    if (const rapidjson::Value* x = json::get_object(obj, "x_groq")) {
      u = json::get_object(*x, "usage");
    }
  }
  if (u == nullptr) {
    return std::nullopt;
  }
  ib::usage out;
  out.prompt_tokens = json::get_int(*u, "prompt_tokens").value_or(0);
  out.completion_tokens = json::get_int(*u, "completion_tokens").value_or(0);
  out.total_tokens =
      json::get_int(*u, "total_tokens").value_or(out.prompt_tokens + out.completion_tokens);
  std::optional<std::int64_t> cached;
  if (const rapidjson::Value* details = json::get_object(*u, "prompt_tokens_details")) {
    cached = json::get_int(*details, "cached_tokens");
  }
  if (!cached) {
    cached = json::get_int(*u, "prompt_cache_hit_tokens");  // DeepSeek
  }
  out.cached_tokens = cached.value_or(0);
  return out;
}

namespace {

/// `choice.message.tool_calls[].function.arguments` that are `""` (or only whitespace) become
/// `"{}"`, as OpenAI sends them; true when one was changed.
template <class Allocator>
bool fill_empty_tool_arguments(rapidjson::Value& choice, Allocator& alloc) {
  auto msg = choice.FindMember("message");
  if (msg == choice.MemberEnd() || !msg->value.IsObject()) {
    return false;
  }
  auto calls = msg->value.FindMember("tool_calls");
  if (calls == msg->value.MemberEnd() || !calls->value.IsArray()) {
    return false;
  }
  bool changed = false;
  for (auto& call : calls->value.GetArray()) {
    const rapidjson::Value* fn = json::get_object(call, "function");
    if (fn == nullptr) {
      continue;
    }
    auto args = json::get_string(*fn, "arguments");
    if (args && !has_text(*args)) {
      set_empty_object_arguments(call, alloc);
      changed = true;
    }
  }
  return changed;
}

}  // namespace

// -- non-streamed responses -----------------------------------------------------------------------

decoded_response decode(const config::provider_config& p, const chat_request&,
                        std::string_view upstream_model, const upstream_response& res) {
  const dialect& d = dialect_for(p);
  if (res.status < 200 || res.status >= 300) {
    return to_decoded(map_openai_style_error(d, p.name, res.status, res.content_type, res.body));
  }
  // DeepSeek may send blank lines while it holds a non-streamed request: they are not the body.
  std::string_view body = res.body;
  while (!body.empty() && is_json_space(body.front())) {
    body.remove_prefix(1);
  }
  // The first nodes live on the stack: a typical completion parses without a heap allocation
  // for the document.
  char pool[8192];
  rapidjson::MemoryPoolAllocator<> values(pool, sizeof pool);
  rapidjson::Document doc(&values);
  if (!json::parse_fast(doc, body) || !doc.IsObject()) {
    return to_decoded(invalid_response());
  }
  const rapidjson::Value* err = json::member(doc, "error");
  const rapidjson::Value* choices = json::get_array(doc, "choices");
  if ((err != nullptr && !err->IsNull()) || choices == nullptr || choices->Empty()) {
    return to_decoded(invalid_response());
  }
  decoded_response out;
  out.result = outcome::success;
  out.status = 200;
  out.model = std::string(json::get_string(doc, "model").value_or(upstream_model));
  out.tokens = read_usage(doc);
  bool changed = false;
  if (d.map_finish_reason || d.empty_tool_arguments_as_object) {
    for (auto& choice : doc["choices"].GetArray()) {
      if (!choice.IsObject()) {
        continue;
      }
      if (d.empty_tool_arguments_as_object) {
        changed = fill_empty_tool_arguments(choice, doc.GetAllocator()) || changed;
      }
      auto it = choice.FindMember("finish_reason");
      if (!d.map_finish_reason || it == choice.MemberEnd() || !it->value.IsString()) {
        continue;
      }
      if (auto mapped = map_finish_reason(d, json::view(it->value))) {
        it->value.SetString(rapidjson::StringRef(mapped->data(), mapped->size()));
        changed = true;
      }
    }
  }
  if (changed) {
    out.body.reserve(body.size());
    write_json(doc, out.body);
  } else if (body.size() == res.body.size()) {
    out.body_is_input = true;
  } else {
    out.body.assign(body);  // leading blank lines were trimmed
  }
  return out;
}

// -- streamed responses ---------------------------------------------------------------------------

namespace {

using pool_allocator = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;
using pooled_document =
    rapidjson::GenericDocument<rapidjson::UTF8<>, pool_allocator, pool_allocator>;

/// The buffers a stream event is parsed into, so that a typical chunk costs no heap allocation.
/// One set per thread, made on the thread's first event: an event's document lives only while
/// the translator handles it, so the streams a thread serves take turns with one set instead of
/// each open stream holding 20 KiB (bench/README.md, "Memory").
struct parse_scratch {
  alignas(16) std::array<char, 16 * 1024> values;
  alignas(16) std::array<char, 4 * 1024> stack;
  std::optional<pool_allocator> value_pool;
  std::optional<pool_allocator> stack_pool;
};

/// An empty document on this thread's scratch buffers (what a previous document of this thread
/// allocated beyond them is freed now). Valid until the next call on the same thread.
pooled_document make_document() {
  thread_local std::unique_ptr<parse_scratch> scratch;
  if (!scratch) {
    scratch = std::make_unique<parse_scratch>();
  }
  scratch->value_pool.emplace(scratch->values.data(), scratch->values.size());
  scratch->stack_pool.emplace(scratch->stack.data(), scratch->stack.size());
  return pooled_document(&*scratch->value_pool, 1024, &*scratch->stack_pool);
}

class translator final : public stream_translator {
 public:
  translator(const dialect& d, bool include_usage, std::string_view upstream_model)
      : dialect_(d), include_usage_(include_usage), model_(upstream_model) {}

  void feed(std::string_view bytes, stream_output& out) override {
    if (!finished()) {
      bool ok = parser_.feed(bytes, [&](const sse_event& ev) { on_event(ev, out); });
      if (!ok && !finished()) {
        fail(out, outcome::bad_response, "upstream sent an oversized stream event",
             "upstream_error");
      }
    }
    publish(out);
  }

  void finish(stream_output& out) override {
    if (!finished() && parser_.has_partial()) {
      // A last event that is not followed by a blank line still counts.
      parser_.feed("\n\n", [&](const sse_event& ev) { on_event(ev, out); });
    }
    if (!finished()) {
      fail(out, outcome::bad_response, "upstream stream ended before completion", "upstream_error");
    }
    publish(out);
  }

 private:
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

  void fail(stream_output& out, outcome result, std::string_view message, std::string_view type,
            std::string_view code = {}) {
    failed_ = true;
    stream_failure f;
    f.result = result;
    f.status = 502;
    f.envelope = envelope(message, type, {}, code);
    out.failure = std::move(f);
  }

  void fail_with_upstream_error(stream_output& out, const rapidjson::Value& doc) {
    failed_ = true;
    auto fields = read_error_fields(doc);
    stream_failure f;
    f.result = outcome::server_error;
    f.status = 502;
    if (fields) {
      f.envelope = envelope(
          fields->message.empty() ? "upstream reported an error" : fields->message,
          fields->type.empty() ? "server_error" : fields->type, fields->param, fields->code);
    } else {
      f.envelope = envelope("upstream reported an error", "server_error");
    }
    out.failure = std::move(f);
  }

  void on_event(const sse_event& ev, stream_output& out) {
    if (finished()) {
      return;
    }
    std::string_view data = ev.data;
    if (ev.event != "error" && trim(data).empty()) {
      return;  // an empty `data:` carries nothing: a keep-alive, not payload
    }
    out.payload = true;
    if (ev.event == "error") {
      pooled_document doc = make_document();
      doc.Parse<json::parse_flags>(data.data(), data.size());
      if (doc.HasParseError()) {
        fail(out, outcome::server_error, "upstream reported an error", "server_error");
      } else {
        fail_with_upstream_error(out, doc);
      }
      return;
    }
    if (trim(data) == "[DONE]") {
      if (include_usage_ && !usage_chunk_seen_ && usage_) {
        append_usage_chunk(out.client_bytes);
      }
      append_sse_data(out.client_bytes, "[DONE]");
      done_ = true;
      return;
    }
    pooled_document doc = make_document();
    if (!json::parse_fast(doc, data) || !doc.IsObject()) {
      fail(out, outcome::bad_response, "upstream sent an invalid stream event", "upstream_error");
      return;
    }
    if (const rapidjson::Value* err = json::member(doc, "error"); err && !err->IsNull()) {
      fail_with_upstream_error(out, doc);
      return;
    }
    const rapidjson::Value* x_groq = json::get_object(doc, "x_groq");
    if (x_groq != nullptr) {
      const rapidjson::Value* gerr = json::member(*x_groq, "error");
      if (gerr != nullptr && !gerr->IsNull()) {
        auto text = json::view(*gerr);
        fail(out, outcome::server_error,
             text.empty() ? std::string_view("upstream reported an error") : text, "server_error");
        return;
      }
    }
    remember_ids(doc);
    bool changed = scan_choices(doc, out.client_bytes);
    if (auto u = read_usage(doc)) {
      usage_ = u;
    }
    const rapidjson::Value* choices = json::get_array(doc, "choices");
    if (choices != nullptr && choices->Empty() && json::get_object(doc, "usage") != nullptr) {
      usage_chunk_seen_ = true;
      if (!include_usage_) {
        return;  // usage we asked for on our own account: the client did not ask for it
      }
    }
    // A payload spread over several `data:` lines was joined with `\n`: passed on as it is, it
    // would reach the client as one event whose first line is its only data (found by
    // fuzz/anthropic_stream.cpp), so it is written again on one line.
    if (changed || data.find('\n') != std::string_view::npos) {
      std::string& o = out.client_bytes;
      o.reserve(o.size() + data.size() + 16);
      o += "data: ";
      write_json(doc, o);
      o += "\n\n";
    } else {
      append_sse_data(out.client_bytes, data);
    }
  }

  void remember_ids(const rapidjson::Value& doc) {
    if (auto m = json::get_string(doc, "model"); m && *m != model_) {
      model_.assign(*m);
    }
    if (id_.empty()) {
      if (auto id = json::get_string(doc, "id")) {
        id_.assign(*id);
      }
    }
    if (created_ == 0) {
      created_ = json::get_int(doc, "created").value_or(0);
    }
  }

  /// Notes content, maps finish reasons and (for dialects that want it) completes tool calls
  /// whose arguments never arrived; true when the chunk was changed. Chunks injected ahead of
  /// this one are appended to `o`.
  bool scan_choices(pooled_document& doc, std::string& o) {
    auto it = doc.FindMember("choices");
    if (it == doc.MemberEnd() || !it->value.IsArray()) {
      return false;
    }
    bool changed = false;
    for (auto& choice : it->value.GetArray()) {
      if (!choice.IsObject()) {
        continue;
      }
      const std::int64_t choice_index = json::get_int(choice, "index").value_or(0);
      rapidjson::Value* calls = nullptr;
      if (auto d = choice.FindMember("delta"); d != choice.MemberEnd() && d->value.IsObject()) {
        const rapidjson::Value& delta = d->value;
        if (nonempty_string(delta, "content") || nonempty_string(delta, "reasoning_content")
            || nonempty_string(delta, "reasoning") || nonempty_string(delta, "refusal")
            || json::get_object(delta, "function_call") != nullptr) {
          content_ = true;
        }
        if (auto c = d->value.FindMember("tool_calls");
            c != d->value.MemberEnd() && c->value.IsArray() && !c->value.Empty()) {
          content_ = true;
          calls = &c->value;
          if (dialect_.empty_tool_arguments_as_object) {
            note_tool_fragments(choice_index, c->value);
          }
        }
      }
      auto fr = choice.FindMember("finish_reason");
      // An empty finish_reason mid-stream is read as "not finished yet", like null.
      if (fr == choice.MemberEnd() || !fr->value.IsString() || fr->value.GetStringLength() == 0) {
        continue;
      }
      content_ = true;
      if (dialect_.empty_tool_arguments_as_object) {
        changed = complete_empty_tool_calls(choice_index, calls, doc.GetAllocator(), o) || changed;
      }
      if (auto mapped = map_finish_reason(dialect_, json::view(fr->value))) {
        fr->value.SetString(rapidjson::StringRef(mapped->data(), mapped->size()));
        changed = true;
      }
    }
    return changed;
  }

  /// Records, per (choice, tool call index), whether a non-empty arguments fragment arrived.
  void note_tool_fragments(std::int64_t choice_index, const rapidjson::Value& calls) {
    std::int64_t position = 0;
    for (const auto& call : calls.GetArray()) {
      const std::int64_t index = json::get_int(call, "index").value_or(position);
      ++position;
      tool_state& t = tool(choice_index, index);
      if (const rapidjson::Value* fn = json::get_object(call, "function")) {
        auto args = json::get_string(*fn, "arguments");
        if (args && has_text(*args)) {
          t.has_arguments = true;
        }
      }
    }
  }

  /// Choice `choice_index` has finished: every one of its tool calls that got no arguments gets
  /// `"{}"`, either in this chunk (`calls`, when the call is announced here too) or in a chunk
  /// injected ahead of it. True when this chunk was changed.
  bool complete_empty_tool_calls(std::int64_t choice_index, rapidjson::Value* calls,
                                 pool_allocator& alloc, std::string& o) {
    bool changed = false;
    for (tool_state& t : tools_) {
      if (t.choice != choice_index || t.has_arguments) {
        continue;
      }
      t.has_arguments = true;  // once per call
      rapidjson::Value* here = calls != nullptr ? find_call(*calls, t.index) : nullptr;
      if (here != nullptr) {
        set_empty_object_arguments(*here, alloc);
        changed = true;
      } else {
        append_arguments_chunk(o, choice_index, t.index);
      }
    }
    return changed;
  }

  static rapidjson::Value* find_call(rapidjson::Value& calls, std::int64_t index) {
    std::int64_t position = 0;
    rapidjson::Value* found = nullptr;
    for (auto& call : calls.GetArray()) {
      if (json::get_int(call, "index").value_or(position) == index) {
        found = &call;  // the last fragment for this index, in case a chunk repeats it
      }
      ++position;
    }
    return found;
  }

  struct tool_state {
    std::int64_t choice = 0;
    std::int64_t index = 0;
    bool has_arguments = false;
  };

  tool_state& tool(std::int64_t choice, std::int64_t index) {
    for (tool_state& t : tools_) {
      if (t.choice == choice && t.index == index) {
        return t;
      }
    }
    tools_.push_back(tool_state{choice, index, false});
    return tools_.back();
  }

  /// A chunk carrying only `{"index":index,"function":{"arguments":"{}"}}` for `choice`.
  void append_arguments_chunk(std::string& o, std::int64_t choice, std::int64_t index) const {
    json_writer w(o);
    start_chunk(w);
    w.key("choices").start_array().start_object();
    w.key("index").integer(choice);
    w.key("delta").start_object();
    w.key("tool_calls").start_array().start_object();
    w.key("index").integer(index);
    w.key("function").start_object().key("arguments").string("{}").end_object();
    w.end_object().end_array();
    w.end_object();
    w.key("finish_reason").null();
    w.end_object().end_array();
    end_chunk(w);
  }

  /// Starts a chunk: `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…`
  /// (object left open for `end_chunk`).
  void start_chunk(json_writer& w) const { start_chunk_event(w, id_, created_, model_); }

  static void end_chunk(json_writer& w) {
    w.end_object();
    w.out() += "\n\n";
  }

  void append_usage_chunk(std::string& o) const {
    json_writer w(o);
    start_chunk(w);
    w.key("choices").start_array().end_array();
    w.key("usage").start_object();
    w.key("prompt_tokens").integer(usage_->prompt_tokens);
    w.key("completion_tokens").integer(usage_->completion_tokens);
    w.key("total_tokens").integer(usage_->total_tokens);
    if (usage_->cached_tokens > 0) {
      w.key("prompt_tokens_details").start_object();
      w.key("cached_tokens").integer(usage_->cached_tokens);
      w.end_object();
    }
    w.end_object();
    end_chunk(w);
  }

  const dialect& dialect_;
  bool include_usage_;
  sse_parser parser_;
  std::string model_;
  std::string id_;
  std::int64_t created_ = 0;
  std::optional<ib::usage> usage_;
  bool usage_chunk_seen_ = false;
  std::vector<tool_state> tools_;  ///< only for dialects that complete empty tool arguments
  bool content_ = false;
  bool done_ = false;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<stream_translator> make_translator(const config::provider_config& p,
                                                   const chat_request& req,
                                                   std::string_view upstream_model) {
  return std::make_unique<translator>(dialect_for(p), req.stream && req.include_usage,
                                      upstream_model);
}

}  // namespace ib::providers::openai
