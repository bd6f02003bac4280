#include "providers/anthropic.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/outcome.hpp"
#include "core/text.hpp"
#include "providers/anthropic_detail.hpp"
#include "providers/error_map.hpp"
#include "providers/json.hpp"

namespace ib::providers::anthropic {

// -- shared helpers -------------------------------------------------------------------------------

namespace detail {

std::string_view finish_reason(std::string_view stop_reason) noexcept {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") {
    return "tool_calls";
  }
  if (stop_reason == "refusal") {
    return "content_filter";
  }
  // end_turn, stop_sequence, pause_turn and anything new.
  return "stop";
}

std::string_view stop_reason(std::string_view finish_reason) noexcept {
  if (finish_reason == "length") {
    return "max_tokens";
  }
  if (finish_reason == "tool_calls" || finish_reason == "function_call") {
    return "tool_use";
  }
  if (finish_reason == "content_filter") {
    return "refusal";
  }
  // stop, and provider-specific reasons (Together's eos, ...).
  return "end_turn";
}

namespace {

// Large enough for any real count, small enough that sums never overflow.
constexpr std::int64_t max_tokens_count = std::int64_t{1} << 40;

void read_count(const rapidjson::Value& usage, std::string_view key, std::int64_t& into) noexcept {
  auto* v = json::member(usage, key);
  if (v == nullptr) {
    return;
  }
  into = 0;
  if (v->IsInt64() && v->GetInt64() >= 0 && v->GetInt64() < max_tokens_count) {
    into = v->GetInt64();
  }
}

}  // namespace

void token_tally::read(const rapidjson::Value& usage) noexcept {
  if (!usage.IsObject()) {
    return;
  }
  read_count(usage, "input_tokens", input);
  read_count(usage, "output_tokens", output);
  read_count(usage, "cache_read_input_tokens", cache_read);
  read_count(usage, "cache_creation_input_tokens", cache_creation);
}

ib::usage token_tally::to_usage() const noexcept {
  ib::usage u;
  u.prompt_tokens = input + cache_read + cache_creation;
  u.completion_tokens = output;
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.cached_tokens = cache_read;
  return u;
}

void token_tally::write_json(json_writer& w) const {
  auto u = to_usage();
  w.start_object();
  w.key("prompt_tokens").integer(u.prompt_tokens);
  w.key("completion_tokens").integer(u.completion_tokens);
  w.key("total_tokens").integer(u.total_tokens);
  w.key("prompt_tokens_details").start_object();
  w.key("cached_tokens").integer(u.cached_tokens);
  w.end_object();
  w.end_object();
}

namespace {

/// Marks an id rewritten by `tool_id`; ids that already start with it are rewritten too.
constexpr std::string_view rewritten_id_prefix = "ibx_";

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
         || c == '-';
}

}  // namespace

/// Anthropic tool ids must match `^[a-zA-Z0-9_-]+$`; ids minted by other providers may not
/// (Kimi's `functions.f:0`, ids with dots or colons). A valid id passes unchanged; any other id,
/// and any valid id that starts with `ibx_`, becomes `ibx_` + the hex of its bytes. The mapping
/// is injective (two distinct ids never become one) and is applied alike to `tool_use.id` and
/// `tool_result.tool_use_id`, so pairs still match.
std::string tool_id(std::string_view id) {
  bool valid = std::all_of(id.begin(), id.end(), is_id_char);
  if (valid && id.substr(0, rewritten_id_prefix.size()) != rewritten_id_prefix) {
    return std::string(id);
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(rewritten_id_prefix);
  out.reserve(out.size() + 2 * id.size());
  for (char c : id) {
    auto b = static_cast<unsigned char>(c);
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 0xF]);
  }
  return out;
}

token_tally token_tally::from_usage(const ib::usage& u) noexcept {
  token_tally t;
  t.cache_read = std::clamp<std::int64_t>(u.cached_tokens, 0, max_tokens_count);
  t.input = std::clamp<std::int64_t>(u.prompt_tokens - t.cache_read, 0, max_tokens_count);
  t.output = std::clamp<std::int64_t>(u.completion_tokens, 0, max_tokens_count);
  return t;
}

void token_tally::write_anthropic_json(json_writer& w) const {
  w.start_object();
  w.key("input_tokens").integer(input);
  w.key("cache_creation_input_tokens").integer(cache_creation);
  w.key("cache_read_input_tokens").integer(cache_read);
  w.key("output_tokens").integer(output);
  w.end_object();
}

std::int64_t now_unix() noexcept {
  return static_cast<std::int64_t>(std::time(nullptr));
}

stream_error_class classify_stream_error(std::string_view type) noexcept {
  if (type == "overloaded_error") {
    return {outcome::server_error, 529};
  }
  if (type == "api_error") {
    return {outcome::server_error, 500};
  }
  return {outcome::bad_response, 502};
}

ib::error invalid(std::string param, std::string_view what) {
  ib::error e{errc::invalid_request, param + ": " + std::string(what)};
  e.param = std::move(param);
  return e;
}

std::string index_path(std::string_view base, std::size_t i) {
  std::string p(base);
  p += '[';
  p += std::to_string(i);
  p += ']';
  return p;
}

}  // namespace detail

namespace {

using rapidjson::Value;

/// Nesting allowed in JSON we re-serialise (RapidJSON's `Accept` recurses). The client body was
/// already depth-checked against the configured limit; this only guards the stack.
constexpr int max_json_depth = 256;

bool is_blank(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

/// The member `key` of `obj` unless it is absent or `null` (clients send `null` for "unset").
const Value* present(const Value& obj, std::string_view key) noexcept {
  auto* v = json::member(obj, key);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

using detail::index_path;
using detail::invalid;

using detail::is_id_char;
using detail::tool_id;

/// Tool names: OpenAI documents `^[a-zA-Z0-9_-]{1,64}$`, Anthropic `^[a-zA-Z0-9_-]{1,128}$`
/// (both checked 2026-11-30). Names are not rewritten (the model answers with the name it was
/// given), so a name Anthropic would refuse is a clear 400 here.
constexpr std::size_t max_tool_name = 128;

bool valid_tool_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_tool_name
         && std::all_of(name.begin(), name.end(), is_id_char);
}

// -- request: OpenAI chat completion -> Anthropic Messages ----------------------------------------

/// One content block of a turn. Text stays text until written (the final assistant turn may
/// still be trimmed); other blocks are serialised when converted.
struct block {
  enum class kind : std::uint8_t { text, tool_use, tool_result, other };
  kind type = kind::text;
  std::string text;  ///< kind::text: the text; otherwise the block's JSON
  std::string id;    ///< tool_use: its id; tool_result: the id it answers (both as sent)
  std::string path;  ///< tool_use, tool_result: the client field the id came from
};

struct turn {
  std::string_view role;  ///< "user" or "assistant"
  std::vector<block> blocks;
};

struct data_url {
  std::string_view media_type;
  std::string_view data;
};

/// Parses `data:<media type>[;param]*;base64,<data>`.
result<data_url> parse_data_url(std::string_view url, const std::string& path) {
  auto rest = url.substr(5);  // after "data:"
  auto comma = rest.find(',');
  if (comma == std::string_view::npos) {
    return invalid(path, "malformed data: URL");
  }
  auto meta = rest.substr(0, comma);
  data_url out;
  out.data = rest.substr(comma + 1);
  auto semi = meta.find(';');
  out.media_type = meta.substr(0, semi);
  bool base64 = false;
  while (semi != std::string_view::npos) {
    meta.remove_prefix(semi + 1);
    semi = meta.find(';');
    auto param = meta.substr(0, semi);
    if (param.size() == 6 && istarts_with(param, "base64")) {
      base64 = true;
    }
  }
  if (out.media_type.empty() || !base64) {
    return invalid(path, "anthropic needs a base64 data: URL with a media type");
  }
  return out;
}

std::string base64_source_block(std::string_view type, const data_url& d) {
  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("type");
  w.string(type);
  w.key("source");
  w.start_object();
  w.key("type");
  w.string("base64");
  w.key("media_type");
  w.string(d.media_type);
  w.key("data");
  w.string(d.data);
  w.end_object();
  w.end_object();
  return buf;
}

/// The media type Anthropic accepts for an `image` block, or empty. Anthropic takes image/jpeg,
/// image/png, image/gif and image/webp (checked 2026-11-30: the vision guide and the SDKs'
/// `media_type` enum); case is folded, and `image/jpg`, a common misspelling, becomes image/jpeg.
std::string_view image_media_type(std::string_view t) noexcept {
  for (std::string_view known : {"image/jpeg", "image/png", "image/gif", "image/webp"}) {
    if (iequals(t, known)) {
      return known;
    }
  }
  return iequals(t, "image/jpg") ? "image/jpeg" : std::string_view{};
}

/// An `image_url` part -> an `image` block.
result<std::string> image_block(const Value& part, const std::string& path) {
  std::string_view url;
  bool found = false;
  if (auto* iu = json::member(part, "image_url"); iu != nullptr) {
    if (iu->IsString()) {
      url = json::view(*iu);
      found = true;
    } else if (auto u = json::get_string(*iu, "url")) {
      url = *u;
      found = true;
    }
  }
  if (!found) {
    return invalid(path + ".image_url.url", "expected a string");
  }
  if (istarts_with(url, "data:")) {
    auto d = parse_data_url(url, path + ".image_url.url");
    if (!d) {
      return d.error();
    }
    auto media_type = image_media_type(d->media_type);
    if (media_type.empty()) {
      return invalid(path + ".image_url.url",
                     "anthropic accepts only image/jpeg, image/png, image/gif or image/webp "
                     "images");
    }
    if (is_blank(d->data)) {
      return invalid(path + ".image_url.url", "the data: URL holds no image data");
    }
    d->media_type = media_type;
    return base64_source_block("image", *d);
  }
  if (!istarts_with(url, "https://") && !istarts_with(url, "http://")) {
    return invalid(path + ".image_url.url", "expected an http(s) or data: URL");
  }
  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("type");
  w.string("image");
  w.key("source");
  w.start_object();
  w.key("type");
  w.string("url");
  w.key("url");
  w.string(url);
  w.end_object();
  w.end_object();
  return buf;
}

/// A `file` part -> a `document` block (inline PDFs only).
result<std::string> document_block(const Value& part, const std::string& path) {
  auto* file = json::get_object(part, "file");
  auto data = file != nullptr ? json::get_string(*file, "file_data") : std::nullopt;
  if (!data || !istarts_with(*data, "data:")) {
    return invalid(path + ".file", "anthropic supports only inline file_data (a base64 PDF)");
  }
  auto d = parse_data_url(*data, path + ".file.file_data");
  if (!d) {
    return d.error();
  }
  if (!iequals(d->media_type, "application/pdf")) {
    return invalid(path + ".file.file_data", "anthropic supports only application/pdf files");
  }
  if (is_blank(d->data)) {
    return invalid(path + ".file.file_data", "the data: URL holds no file data");
  }
  d->media_type = "application/pdf";
  return base64_source_block("document", *d);
}

enum class part_policy : std::uint8_t {
  text_only,  ///< system messages
  assistant,  ///< text and refusal
  user,       ///< text, image_url, file
  tool,       ///< text and image_url (inside tool_result)
};

/// Converts `content` (a string, null, or an array of parts) into blocks. Empty and
/// whitespace-only text is skipped: Anthropic rejects such text blocks.
result<std::vector<block>> convert_content(const Value* content, const std::string& path,
                                           part_policy policy) {
  std::vector<block> out;
  if (content == nullptr || content->IsNull()) {
    return out;
  }
  if (content->IsString()) {
    if (!is_blank(json::view(*content))) {
      out.push_back({block::kind::text, std::string(json::view(*content))});
    }
    return out;
  }
  if (!content->IsArray()) {
    return invalid(path, "expected a string or an array of content parts");
  }
  for (rapidjson::SizeType j = 0; j < content->Size(); ++j) {
    const Value& part = (*content)[j];
    auto ppath = index_path(path, j);
    auto type = json::get_string(part, "type");
    if (!type) {
      return invalid(ppath + ".type", "expected a string");
    }
    if (*type == "text" || (*type == "refusal" && policy == part_policy::assistant)) {
      auto text = json::get_string(part, *type == "text" ? "text" : "refusal");
      if (!text) {
        return invalid(ppath + "." + std::string(*type), "expected a string");
      }
      if (!is_blank(*text)) {
        out.push_back({block::kind::text, std::string(*text)});
      }
      continue;
    }
    if (*type == "image_url" && (policy == part_policy::user || policy == part_policy::tool)) {
      auto b = image_block(part, ppath);
      if (!b) {
        return b.error();
      }
      out.push_back({block::kind::other, std::move(*b)});
      continue;
    }
    if (*type == "file" && policy == part_policy::user) {
      auto b = document_block(part, ppath);
      if (!b) {
        return b.error();
      }
      out.push_back({block::kind::other, std::move(*b)});
      continue;
    }
    return invalid(ppath + ".type", "content parts of type \"" + std::string(*type)
                                        + "\" are not supported by anthropic in this message");
  }
  return out;
}

void write_block(json_writer& w, const block& b) {
  if (b.type == block::kind::text) {
    w.start_object();
    w.key("type");
    w.string("text");
    w.key("text");
    w.string(b.text);
    w.end_object();
  } else {
    w.raw(b.text, rapidjson::kObjectType);
  }
}

class request_encoder {
 public:
  request_encoder(const Value& root, std::string_view anthropic_version)
      : root_(root), anthropic_version_(anthropic_version) {}

  result<std::string> run(std::string_view upstream_model);

 private:
  result<void> check_unsupported() const;
  result<void> convert_messages();
  result<void> convert_system(const Value& m, const std::string& path);
  result<void> convert_user(const Value& m, const std::string& path);
  result<void> convert_assistant(const Value& m, const std::string& path);
  result<void> convert_tool(const Value& m, const std::string& path);
  result<std::string> convert_tool_use(const Value& call, const std::string& path);
  result<std::optional<std::string>> convert_tools() const;
  result<std::optional<std::string>> convert_tool_choice() const;
  result<std::int64_t> max_tokens() const;
  result<std::vector<std::string_view>> stop_sequences() const;
  result<void> check_tool_pairs() const;
  void add(std::string_view role, block b);
  void trim_final_assistant();

  const Value& root_;
  std::string_view anthropic_version_;
  std::vector<std::string> system_;
  std::vector<turn> turns_;
  bool has_tool_blocks_ = false;
};

void request_encoder::add(std::string_view role, block b) {
  if (turns_.empty() || turns_.back().role != role) {
    turns_.push_back({role, {}});
  }
  turns_.back().blocks.push_back(std::move(b));
}

result<void> request_encoder::check_unsupported() const {
  if (auto* n = present(root_, "n"); n != nullptr && n->IsNumber() && n->GetDouble() > 1) {
    return invalid("n", "anthropic does not support n > 1");
  }
  if (auto* lp = present(root_, "logprobs"); lp != nullptr && lp->IsBool() && lp->GetBool()) {
    return invalid("logprobs", "anthropic does not support logprobs");
  }
  if (auto* tl = present(root_, "top_logprobs");
      tl != nullptr && !(tl->IsNumber() && tl->GetDouble() == 0)) {
    return invalid("top_logprobs", "anthropic does not support logprobs");
  }
  if (auto* rf = present(root_, "response_format"); rf != nullptr) {
    auto type = json::get_string(*rf, "type");
    if (type && *type == "json_schema") {
      return invalid("response_format", "json_schema is not supported by anthropic");
    }
  }
  return {};
}

result<void> request_encoder::convert_system(const Value& m, const std::string& path) {
  auto blocks =
      convert_content(json::member(m, "content"), path + ".content", part_policy::text_only);
  if (!blocks) {
    return blocks.error();
  }
  for (auto& b : *blocks) {
    system_.push_back(std::move(b.text));
  }
  return {};
}

result<void> request_encoder::convert_user(const Value& m, const std::string& path) {
  auto blocks = convert_content(json::member(m, "content"), path + ".content", part_policy::user);
  if (!blocks) {
    return blocks.error();
  }
  for (auto& b : *blocks) {
    add("user", std::move(b));
  }
  return {};
}

result<std::string> request_encoder::convert_tool_use(const Value& call, const std::string& path) {
  if (!call.IsObject()) {
    return invalid(path, "expected an object");
  }
  if (auto type = json::get_string(call, "type"); type && *type != "function") {
    return invalid(path + ".type", "only function tool calls are supported by anthropic");
  }
  auto id = json::get_string(call, "id");
  if (!id || id->empty()) {
    return invalid(path + ".id", "expected a non-empty string");
  }
  auto* fn = json::get_object(call, "function");
  auto name = fn != nullptr ? json::get_string(*fn, "name") : std::nullopt;
  if (!name || name->empty()) {
    return invalid(path + ".function.name", "expected a non-empty string");
  }
  if (!valid_tool_name(*name)) {
    return invalid(path + ".function.name",
                   "anthropic needs tool names of 1 to 128 letters, digits, '_' or '-'");
  }
  const std::string args_path = path + ".function.arguments";
  rapidjson::Document args;
  auto* raw = fn != nullptr ? present(*fn, "arguments") : nullptr;
  if (raw == nullptr || (raw->IsString() && is_blank(json::view(*raw)))) {
    args.SetObject();  // a call without arguments (a streamed empty input joins to "")
  } else if (raw->IsString()) {
    auto text = json::view(*raw);
    if (exceeds_depth(text, max_json_depth)) {
      return invalid(args_path, "nested too deeply");
    }
    args.Parse<json::parse_flags>(text.data(), text.size());
    if (args.HasParseError() || !args.IsObject()) {
      return invalid(args_path, "expected a JSON object (as a string)");
    }
  } else if (raw->IsObject()) {
    args.CopyFrom(*raw, args.GetAllocator());
  } else {
    return invalid(args_path, "expected a JSON object (as a string)");
  }
  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("type");
  w.string("tool_use");
  w.key("id");
  w.string(tool_id(*id));
  w.key("name");
  w.string(*name);
  w.key("input");
  w.value(args);
  w.end_object();
  return buf;
}

result<void> request_encoder::convert_assistant(const Value& m, const std::string& path) {
  auto blocks =
      convert_content(json::member(m, "content"), path + ".content", part_policy::assistant);
  if (!blocks) {
    return blocks.error();
  }
  for (auto& b : *blocks) {
    add("assistant", std::move(b));
  }
  auto* calls = present(m, "tool_calls");
  if (calls == nullptr) {
    return {};
  }
  if (!calls->IsArray()) {
    return invalid(path + ".tool_calls", "expected an array");
  }
  for (rapidjson::SizeType j = 0; j < calls->Size(); ++j) {
    auto call_path = index_path(path + ".tool_calls", j);
    auto b = convert_tool_use((*calls)[j], call_path);
    if (!b) {
      return b.error();
    }
    auto id = json::get_string((*calls)[j], "id").value_or("");
    add("assistant", {block::kind::tool_use, std::move(*b), std::string(id), call_path + ".id"});
    has_tool_blocks_ = true;
  }
  return {};
}

result<void> request_encoder::convert_tool(const Value& m, const std::string& path) {
  auto id = json::get_string(m, "tool_call_id");
  if (!id || id->empty()) {
    return invalid(path + ".tool_call_id", "expected a non-empty string");
  }
  auto* content = json::member(m, "content");
  auto blocks = convert_content(content, path + ".content", part_policy::tool);
  if (!blocks) {
    return blocks.error();
  }
  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("type");
  w.string("tool_result");
  w.key("tool_use_id");
  w.string(tool_id(*id));
  if (content != nullptr && content->IsString()) {
    if (!is_blank(json::view(*content))) {
      w.key("content");
      w.string(json::view(*content));
    }
  } else if (!blocks->empty()) {
    w.key("content");
    w.start_array();
    for (const auto& b : *blocks) {
      write_block(w, b);
    }
    w.end_array();
  }
  w.end_object();
  add("user", {block::kind::tool_result, std::move(buf), std::string(*id), path + ".tool_call_id"});
  has_tool_blocks_ = true;
  return {};
}

result<void> request_encoder::convert_messages() {
  auto* messages = json::get_array(root_, "messages");
  if (messages == nullptr) {
    return invalid("messages", "expected an array");
  }
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    auto path = index_path("messages", i);
    if (!m.IsObject()) {
      return invalid(path, "expected an object");
    }
    auto role = json::get_string(m, "role");
    if (!role) {
      return invalid(path + ".role", "expected a string");
    }
    result<void> r;
    if (*role == "system" || *role == "developer") {
      r = convert_system(m, path);
    } else if (*role == "user") {
      r = convert_user(m, path);
    } else if (*role == "assistant") {
      r = convert_assistant(m, path);
    } else if (*role == "tool") {
      r = convert_tool(m, path);
    } else {
      r = invalid(path + ".role", "role not supported by anthropic");
    }
    if (!r) {
      return r;
    }
  }
  trim_final_assistant();
  if (turns_.empty()) {
    return invalid("messages", "anthropic needs at least one non-empty user or assistant message");
  }
  return check_tool_pairs();
}

/// Anthropic answers 400 unless every `tool_use` is answered by a `tool_result` in the very next
/// (user) turn, every `tool_result` answers a `tool_use` of the turn before it, and ids are
/// unique. The OpenAI API refuses the same histories (a tool message must answer a preceding
/// tool call; every tool call needs its tool message), so these are the client's errors: a 400
/// naming the message, rather than one from upstream.
result<void> request_encoder::check_tool_pairs() const {
  std::vector<std::string_view> seen_uses;  // every tool_use id so far
  for (std::size_t k = 0; k < turns_.size(); ++k) {
    const auto& t = turns_[k];
    std::vector<std::string_view> open;  // tool_use ids of the previous turn not yet answered
    if (k > 0 && turns_[k - 1].role == "assistant") {
      for (const auto& b : turns_[k - 1].blocks) {
        if (b.type == block::kind::tool_use) {
          open.push_back(b.id);
        }
      }
    }
    for (const auto& b : t.blocks) {
      if (b.type == block::kind::tool_use) {
        if (std::find(seen_uses.begin(), seen_uses.end(), b.id) != seen_uses.end()) {
          return invalid(b.path, "tool call ids must be unique in the conversation");
        }
        seen_uses.push_back(b.id);
      } else if (b.type == block::kind::tool_result) {
        auto it = std::find(open.begin(), open.end(), b.id);
        if (it == open.end()) {
          return invalid(b.path,
                         "a tool message must answer a tool call of the assistant message just "
                         "before it (once)");
        }
        open.erase(it);
      }
    }
    if (t.role == "user" && !open.empty()) {
      for (const auto& b : turns_[k - 1].blocks) {
        if (b.type == block::kind::tool_use
            && std::find(open.begin(), open.end(), b.id) != open.end()) {
          return invalid(b.path, "this tool call has no tool message answering it");
        }
      }
    }
  }
  // A final assistant turn with tool calls is answered by nobody.
  if (!turns_.empty() && turns_.back().role == "assistant") {
    for (const auto& b : turns_.back().blocks) {
      if (b.type == block::kind::tool_use) {
        return invalid(b.path, "this tool call has no tool message answering it");
      }
    }
  }
  return {};
}

/// Anthropic rejects a final (prefill) assistant turn whose text ends in whitespace.
void request_encoder::trim_final_assistant() {
  if (turns_.empty() || turns_.back().role != "assistant") {
    return;
  }
  auto& blocks = turns_.back().blocks;
  if (blocks.back().type != block::kind::text) {
    return;
  }
  auto& text = blocks.back().text;
  while (!text.empty() && is_blank(std::string_view(text).substr(text.size() - 1))) {
    text.pop_back();
  }
  if (text.empty()) {
    blocks.pop_back();
  }
  if (blocks.empty()) {
    turns_.pop_back();
  }
}

/// Writes a function's `parameters` as Anthropic's `input_schema`, which must be an object schema
/// with `"type": "object"` (Anthropic answers 400 `input_schema.type: Field required` otherwise).
/// OpenAI accepts a missing or empty schema and one without `type`: absent or null becomes
/// `{"type":"object","properties":{}}`, and `"type":"object"` is added where it is missing. A
/// schema of another type has no faithful mapping (a tool's input is always an object there).
result<void> write_input_schema(json_writer& w, const Value* params, const std::string& path) {
  if (params == nullptr) {
    w.start_object();
    w.key("type");
    w.string("object");
    w.key("properties");
    w.start_object();
    w.end_object();
    w.end_object();
    return {};
  }
  if (!params->IsObject()) {
    return invalid(path, "expected a JSON Schema object");
  }
  auto* type = json::member(*params, "type");
  if (type != nullptr && !(type->IsString() && json::view(*type) == "object")) {
    return invalid(path + ".type", "anthropic needs an object schema (\"type\": \"object\")");
  }
  if (type != nullptr) {
    w.value(*params);
    return {};
  }
  w.start_object();
  w.key("type");
  w.string("object");
  for (const auto& m : params->GetObject()) {
    w.key(json::view(m.name));
    w.value(m.value);
  }
  w.end_object();
  return {};
}

result<std::optional<std::string>> request_encoder::convert_tools() const {
  auto* tools = present(root_, "tools");
  if (tools == nullptr) {
    return std::optional<std::string>{};
  }
  if (!tools->IsArray()) {
    return invalid("tools", "expected an array");
  }
  if (tools->Empty()) {
    return std::optional<std::string>{};
  }
  std::string buf;
  json_writer w(buf);
  w.start_array();
  std::vector<std::string_view> names;
  for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
    const Value& t = (*tools)[i];
    auto path = index_path("tools", i);
    if (!t.IsObject()) {
      return invalid(path, "expected an object");
    }
    if (auto type = json::get_string(t, "type"); type && *type != "function") {
      return invalid(path + ".type", "only function tools are supported by anthropic");
    }
    auto* fn = json::get_object(t, "function");
    auto name = fn != nullptr ? json::get_string(*fn, "name") : std::nullopt;
    if (!name || name->empty()) {
      return invalid(path + ".function.name", "expected a non-empty string");
    }
    if (!valid_tool_name(*name)) {
      return invalid(path + ".function.name",
                     "anthropic needs tool names of 1 to 128 letters, digits, '_' or '-'");
    }
    if (std::find(names.begin(), names.end(), *name) != names.end()) {
      return invalid(path + ".function.name", "tool names must be unique");
    }
    names.push_back(*name);
    w.start_object();
    w.key("name");
    w.string(*name);
    if (auto desc = json::get_string(*fn, "description"); desc && !is_blank(*desc)) {
      w.key("description");
      w.string(*desc);
    }
    w.key("input_schema");
    if (auto r = write_input_schema(w, present(*fn, "parameters"), path + ".function.parameters");
        !r) {
      return r.error();
    }
    w.end_object();
  }
  w.end_array();
  return std::optional<std::string>(std::move(buf));
}

result<std::optional<std::string>> request_encoder::convert_tool_choice() const {
  std::string_view type;
  std::string_view name;
  if (auto* tc = present(root_, "tool_choice")) {
    if (tc->IsString()) {
      auto s = json::view(*tc);
      if (s == "auto") {
        type = "auto";
      } else if (s == "required") {
        type = "any";
      } else if (s == "none") {
        type = "none";
      } else {
        return invalid("tool_choice", "expected \"none\", \"auto\", \"required\" or a function");
      }
    } else {
      auto* fn = json::get_object(*tc, "function");
      auto n = fn != nullptr ? json::get_string(*fn, "name") : std::nullopt;
      auto t = json::get_string(*tc, "type");
      if (!n || n->empty() || (t && *t != "function")) {
        return invalid("tool_choice", "expected \"none\", \"auto\", \"required\" or a function");
      }
      type = "tool";
      name = *n;
      bool declared = false;
      if (auto* tools = json::get_array(root_, "tools")) {
        for (const auto& t : tools->GetArray()) {
          auto* f = json::get_object(t, "function");
          auto tn = f != nullptr ? json::get_string(*f, "name") : std::nullopt;
          declared = declared || (tn && *tn == name);
        }
      }
      if (!declared) {
        return invalid("tool_choice", "names a function that is not among the tools");
      }
    }
  }
  bool no_parallel = false;
  if (auto* p = present(root_, "parallel_tool_calls");
      p != nullptr && p->IsBool() && !p->GetBool()) {
    no_parallel = true;
  }
  if (type.empty() && no_parallel) {
    type = "auto";
  }
  if (type.empty()) {
    return std::optional<std::string>{};
  }
  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("type");
  w.string(type);
  if (!name.empty()) {
    w.key("name");
    w.string(name);
  }
  if (no_parallel && type != "none") {
    w.key("disable_parallel_tool_use");
    w.boolean(true);
  }
  w.end_object();
  return std::optional<std::string>(std::move(buf));
}

result<std::int64_t> request_encoder::max_tokens() const {
  for (std::string_view k : {"max_completion_tokens", "max_tokens"}) {
    auto* v = present(root_, k);
    if (v == nullptr) {
      continue;
    }
    std::optional<std::int64_t> n;
    if (v->IsInt64()) {
      n = v->GetInt64();
    } else if (v->IsDouble() && v->GetDouble() >= 1 && v->GetDouble() < 1e15
               && v->GetDouble()
                      == static_cast<double>(static_cast<std::int64_t>(v->GetDouble()))) {
      n = static_cast<std::int64_t>(v->GetDouble());
    }
    if (!n || *n < 1) {
      return invalid(std::string(k), "expected a positive integer");
    }
    return *n;
  }
  return std::int64_t{4096};
}

result<std::vector<std::string_view>> request_encoder::stop_sequences() const {
  std::vector<std::string_view> out;
  auto* stop = present(root_, "stop");
  if (stop == nullptr) {
    return out;
  }
  // Anthropic refuses empty and whitespace-only stop sequences; duplicates change nothing.
  auto take = [&out](const Value& s) {
    if (!s.IsString()) {
      return false;
    }
    auto text = json::view(s);
    if (!is_blank(text) && std::find(out.begin(), out.end(), text) == out.end()) {
      out.push_back(text);
    }
    return true;
  };
  if (stop->IsArray()) {
    for (const auto& s : stop->GetArray()) {
      if (!take(s)) {
        return invalid("stop", "expected a string or an array of strings");
      }
    }
  } else if (!take(*stop)) {
    return invalid("stop", "expected a string or an array of strings");
  }
  return out;
}

/// `user` values that look like an email address are personal data: never sent upstream.
bool looks_like_email(std::string_view s) noexcept {
  auto at = s.find('@');
  return at != std::string_view::npos && s.find('.', at) != std::string_view::npos;
}

result<std::string> request_encoder::run(std::string_view upstream_model) {
  if (auto r = check_unsupported(); !r) {
    return r.error();
  }
  if (auto r = convert_messages(); !r) {
    return r.error();
  }
  auto tokens = max_tokens();
  if (!tokens) {
    return tokens.error();
  }
  auto stops = stop_sequences();
  if (!stops) {
    return stops.error();
  }
  auto tools = convert_tools();
  if (!tools) {
    return tools.error();
  }
  std::optional<std::string> tool_choice;
  if (tools->has_value()) {
    auto tc = convert_tool_choice();
    if (!tc) {
      return tc.error();
    }
    tool_choice = std::move(*tc);
  }
  // Sampling (checked 2026-11-30, providers.md §2): OpenAI takes temperature 0-2 and top_p 0-1.
  // Anthropic takes temperature 0-1 (higher values are sent as 1); Claude 4.x models refuse
  // temperature and top_p together under 2023-06-01, so only one goes, temperature first, as
  // Anthropic advises; from API version 2026-10-21 on, both are refused and neither goes.
  const Value* temperature = present(root_, "temperature");
  if (temperature != nullptr
      && !(temperature->IsNumber() && temperature->GetDouble() >= 0
           && temperature->GetDouble() <= 2)) {
    return invalid("temperature", "expected a number from 0 to 2");
  }
  const Value* top_p = present(root_, "top_p");
  if (top_p != nullptr
      && !(top_p->IsNumber() && top_p->GetDouble() >= 0 && top_p->GetDouble() <= 1)) {
    return invalid("top_p", "expected a number from 0 to 1");
  }
  if (!sampling_accepted(anthropic_version_)) {
    temperature = nullptr;
    top_p = nullptr;
  } else if (temperature != nullptr) {
    top_p = nullptr;
  }

  std::string buf;
  json_writer w(buf);
  w.start_object();
  w.key("model");
  w.string(upstream_model);
  if (!system_.empty()) {
    w.key("system");
    w.start_array();
    for (const auto& s : system_) {
      write_block(w, {block::kind::text, s});
    }
    w.end_array();
  }
  w.key("messages");
  w.start_array();
  for (const auto& t : turns_) {
    w.start_object();
    w.key("role");
    w.string(t.role);
    w.key("content");
    w.start_array();
    // Tool results must open a user turn; anything else follows them, in order.
    for (const auto& b : t.blocks) {
      if (b.type == block::kind::tool_result) {
        write_block(w, b);
      }
    }
    for (const auto& b : t.blocks) {
      if (b.type != block::kind::tool_result) {
        write_block(w, b);
      }
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.key("max_tokens");
  w.integer(*tokens);
  if (auto user = json::get_string(root_, "user");
      user && !user->empty() && !looks_like_email(*user)) {
    w.key("metadata");
    w.start_object();
    w.key("user_id");
    w.string(*user);
    w.end_object();
  }
  if (!stops->empty()) {
    w.key("stop_sequences");
    w.start_array();
    for (auto s : *stops) {
      w.string(s);
    }
    w.end_array();
  }
  if (auto stream = json::get_bool(root_, "stream")) {
    w.key("stream");
    w.boolean(*stream);
  }
  if (temperature != nullptr) {
    w.key("temperature");
    if (temperature->GetDouble() > 1) {
      w.number(1.0);  // Anthropic's range is 0-1; OpenAI's is 0-2
    } else {
      w.value(*temperature);
    }
  }
  if (top_p != nullptr) {
    w.key("top_p");
    w.value(*top_p);
  }
  if (tools->has_value()) {
    w.key("tools");
    w.raw(**tools, rapidjson::kArrayType);
    if (tool_choice) {
      w.key("tool_choice");
      w.raw(*tool_choice, rapidjson::kObjectType);
    }
  } else if (has_tool_blocks_) {
    // Anthropic rejects tool_use/tool_result blocks unless tools are declared; a stand-in
    // tool that the model may not call keeps the history valid.
    w.key("tools").start_array().start_object();
    w.key("name").string("dummy_tool");
    w.key("description")
        .string("Stand-in so that earlier tool calls are accepted; do not call it.");
    w.key("input_schema").start_object();
    w.key("type").string("object");
    w.key("properties").start_object().end_object();
    w.end_object();
    w.end_object().end_array();
    w.key("tool_choice").start_object().key("type").string("none").end_object();
  }
  w.end_object();
  return buf;
}

// -- response: Anthropic message -> OpenAI chat completion ----------------------------------------

decoded_response failure(outcome o, int status, std::string body) {
  decoded_response d;
  d.result = o;
  d.status = status;
  d.body = std::move(body);
  return d;
}

decoded_response bad_message(std::string_view why) {
  return failure(
      outcome::bad_response, 502,
      envelope(std::string("anthropic returned an invalid response: ") + std::string(why),
               "upstream_error"));
}

decoded_response decode_message(std::string_view body, std::string_view upstream_model,
                                std::int64_t created) {
  if (exceeds_depth(body, max_json_depth)) {
    return bad_message("nested too deeply");
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return bad_message("not a JSON object");
  }
  if (auto* err = json::get_object(doc, "error")) {
    // A 2xx carrying an error: a provider failure, reported with the upstream's words.
    auto message = json::get_string(*err, "message");
    auto type = json::get_string(*err, "type");
    return failure(outcome::bad_response, 502,
                   envelope(message ? *message : "anthropic returned an error",
                            type ? *type : "upstream_error"));
  }
  auto type = json::get_string(doc, "type");
  auto* content = json::get_array(doc, "content");
  if ((type && *type != "message") || content == nullptr) {
    return bad_message("not a message");
  }
  auto id = json::get_string(doc, "id").value_or("");
  auto model = json::get_string(doc, "model").value_or(upstream_model);
  if (model.empty()) {
    model = upstream_model;
  }

  std::string text;
  std::string reasoning;
  bool has_text = false;
  std::vector<const Value*> tool_uses;  // the tool_use blocks, checked
  for (const auto& b : content->GetArray()) {
    auto btype = json::get_string(b, "type");
    if (!btype) {
      return bad_message("content block without a type");
    }
    if (*btype == "text") {
      auto t = json::get_string(b, "text");
      if (!t) {
        return bad_message("text block without text");
      }
      text += *t;
      has_text = true;
    } else if (*btype == "tool_use") {
      auto tid = json::get_string(b, "id");
      auto name = json::get_string(b, "name");
      if (!tid || !name) {
        return bad_message("tool_use block without id or name");
      }
      tool_uses.push_back(&b);
    } else if (*btype == "thinking") {
      if (auto t = json::get_string(b, "thinking")) {
        reasoning += *t;
      }
    }
    // redacted_thinking, server tool blocks and future block types are dropped.
  }
  std::string_view stop = json::get_string(doc, "stop_reason").value_or("end_turn");

  detail::token_tally tally;
  auto* usage = json::get_object(doc, "usage");
  if (usage != nullptr) {
    tally.read(*usage);
  }

  std::string out;
  out.reserve(256 + text.size() + reasoning.size());
  json_writer w(out);
  w.start_object();
  w.key("id").string(id);
  w.key("object").string("chat.completion");
  w.key("created").integer(created);
  w.key("model").string(model);
  w.key("choices").start_array().start_object();
  w.key("index").integer(0);
  w.key("message").start_object();
  w.key("role").string("assistant");
  w.key("content");
  if (has_text || tool_uses.empty()) {
    w.string(text);
  } else {
    w.null();
  }
  if (!reasoning.empty()) {
    w.key("reasoning_content").string(reasoning);
  }
  w.key("refusal").null();
  if (!tool_uses.empty()) {
    std::string args;
    w.key("tool_calls").start_array();
    for (const Value* b : tool_uses) {
      w.start_object();
      w.key("id").string(json::get_string(*b, "id").value_or(""));
      w.key("type").string("function");
      w.key("function").start_object();
      w.key("name").string(json::get_string(*b, "name").value_or(""));
      // The arguments are JSON text inside a JSON string, as OpenAI sends them.
      args.clear();
      auto* input = json::member(*b, "input");
      if (input != nullptr && !input->IsNull()) {
        json_writer(args).value(*input);
      } else {
        args = "{}";
      }
      w.key("arguments").string(args);
      w.end_object();
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  w.key("logprobs").null();
  w.key("finish_reason").string(detail::finish_reason(stop));
  w.end_object().end_array();
  if (usage != nullptr) {
    w.key("usage");
    tally.write_json(w);
  }
  w.end_object();

  decoded_response d;
  d.result = outcome::success;
  d.status = 200;
  d.body = std::move(out);
  d.model = std::string(model);
  if (usage != nullptr) {
    d.tokens = tally.to_usage();
  }
  return d;
}

}  // namespace

bool sampling_accepted(std::string_view anthropic_version) noexcept {
  // ISO dates compare as strings.
  return anthropic_version < first_version_without_sampling;
}

result<std::string> encode_body(const chat_request& req, std::string_view upstream_model,
                                std::string_view anthropic_version) {
  if (exceeds_depth(req.body, max_json_depth)) {
    return error{errc::invalid_request, "request body nested too deeply"};
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(req.body.data(), req.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return error{errc::invalid_request, "request body must be a JSON object"};
  }
  return request_encoder(doc, anthropic_version).run(upstream_model);
}

decoded_response decode(const chat_request& req, std::string_view upstream_model,
                        const upstream_response& res) {
  return decode(req, upstream_model, res, detail::now_unix());
}

decoded_response decode(const chat_request& /*req*/, std::string_view upstream_model,
                        const upstream_response& res, std::int64_t created) {
  if (res.status >= 200 && res.status < 300) {
    auto d = decode_message(res.body, upstream_model, created);
    if (d.result == outcome::success) {
      d.status = res.status;
    }
    return d;
  }
  // Anthropic's `{"type":"error","error":{"type","message"}}`, or a generic message for
  // non-JSON pages (Cloudflare 413/5xx HTML, empty bodies); 529 classifies as server_error.
  return to_decoded(map_error("anthropic", res.status, res.content_type, res.body));
}

}  // namespace ib::providers::anthropic
