#include "providers/chat_request.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace ib::providers {

namespace {

constexpr bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// True when every byte of `text` is below 0x80 (eight bytes at a time).
bool is_ascii(std::string_view text) noexcept {
  constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof word);
    if ((word & high_bits) != 0) {
      return false;
    }
  }
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0x80) != 0) {
      return false;
    }
  }
  return true;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// Reads the 4 hex digits after `\u` at `raw[i]`; -1 when malformed.
long read_hex4(std::string_view raw, std::size_t i) noexcept {
  if (i + 4 > raw.size()) {
    return -1;
  }
  long v = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    int h = hex_value(raw[i + k]);
    if (h < 0) {
      return -1;
    }
    v = v * 16 + h;
  }
  return v;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// -- the SAX handler ------------------------------------------------------------------------------

enum class top_key : std::uint8_t { other, model, messages, stream, stream_options, n, tools };
enum class message_key : std::uint8_t { other, role, name, reasoning_content };
enum class kind : std::uint8_t { null, boolean, number, string, object, array };

top_key classify_top(std::string_view k) noexcept {
  if (k == "model") {
    return top_key::model;
  }
  if (k == "messages") {
    return top_key::messages;
  }
  if (k == "stream") {
    return top_key::stream;
  }
  if (k == "stream_options") {
    return top_key::stream_options;
  }
  if (k == "n") {
    return top_key::n;
  }
  if (k == "tools") {
    return top_key::tools;
  }
  return top_key::other;
}

message_key classify_message(std::string_view k) noexcept {
  if (k == "role") {
    return message_key::role;
  }
  if (k == "name") {
    return message_key::name;
  }
  if (k == "reasoning_content") {
    return message_key::reasoning_content;
  }
  return message_key::other;
}

/// One value as the handler sees it; `text` for strings, `integer` for integral numbers.
struct sax_value {
  kind type = kind::null;
  bool boolean = false;
  std::string_view text;
  std::optional<std::int64_t> integer;
};

// Depth convention: `depth_` counts the containers open when an event arrives. The root object's
// members are at depth 1, a message object is at depth 2 (its members at 3).
class request_handler {
 public:
  request_handler(chat_request& req, const rapidjson::MemoryStream& is, const parse_limits& limits)
      : req_(req), is_(is), max_depth_(limits.max_depth), max_messages_(limits.max_messages) {}

  bool Null() { return scalar({.type = kind::null}); }
  bool Bool(bool b) { return scalar({.type = kind::boolean, .boolean = b}); }
  bool Int(int i) { return scalar({.type = kind::number, .integer = i}); }
  bool Uint(unsigned u) { return scalar({.type = kind::number, .integer = u}); }
  bool Int64(std::int64_t i) { return scalar({.type = kind::number, .integer = i}); }
  bool Uint64(std::uint64_t u) {
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return scalar({.type = kind::number});
    }
    return scalar({.type = kind::number, .integer = static_cast<std::int64_t>(u)});
  }
  bool Double(double) { return scalar({.type = kind::number}); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return scalar({.type = kind::number}); }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    return scalar({.type = kind::string, .text = std::string_view(s, len)});
  }
  bool StartObject() { return open(kind::object); }
  bool StartArray() { return open(kind::array); }
  bool EndObject(rapidjson::SizeType) { return close(kind::object); }
  bool EndArray(rapidjson::SizeType) { return close(kind::array); }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    std::string_view k(s, len);
    if (depth_ == 1) {
      top_ = classify_top(k);
      start_member();
    } else if (depth_ == 2 && top_ == top_key::stream_options) {
      include_usage_key_ = k == "include_usage";
    } else if (depth_ == 3 && top_ == top_key::messages) {
      message_key_ = classify_message(k);
    }
    return true;
  }

  const std::optional<error>& failure() const noexcept { return failure_; }
  bool saw_model() const noexcept { return saw_model_; }
  bool saw_messages() const noexcept { return saw_messages_; }

 private:
  bool fail(std::string message, std::string param = {}) {
    failure_ = error{errc::invalid_request, std::move(message), std::move(param)};
    return false;
  }

  static std::string message_path(std::size_t index) {
    return "messages[" + std::to_string(index) + "]";
  }

  // A top-level key was just read: the stream is right after its closing quote.
  void start_member() {
    const std::string_view body = req_.body;
    std::size_t key_end = is_.Tell() - 1;
    // The opening quote is the first `"` after the previous member (only blanks and `,` between).
    std::size_t begin = cursor_;
    while (begin < key_end && body[begin] != '"') {
      ++begin;
    }
    std::size_t v = key_end + 1;
    while (v < body.size() && is_json_space(body[v])) {
      ++v;
    }
    if (v < body.size() && body[v] == ':') {
      ++v;
    }
    while (v < body.size() && is_json_space(body[v])) {
      ++v;
    }
    member_span m;
    m.begin = static_cast<std::uint32_t>(begin);
    m.key_begin = static_cast<std::uint32_t>(begin + 1);
    m.key_end = static_cast<std::uint32_t>(key_end);
    m.value_begin = static_cast<std::uint32_t>(v);
    m.value_end = static_cast<std::uint32_t>(v);
    req_.members.push_back(m);
  }

  void end_member(std::size_t end) {
    cursor_ = end;
    if (!req_.members.empty()) {
      req_.members.back().value_end = static_cast<std::uint32_t>(end);
    }
  }

  bool open(kind k) {
    if (depth_ >= max_depth_) {
      return fail("JSON nesting exceeds " + std::to_string(max_depth_) + " levels");
    }
    if (!value({.type = k})) {
      return false;
    }
    ++depth_;
    if (depth_ == 1) {
      cursor_ = is_.Tell() + 1;  // the handler runs before the `{` is consumed
    }
    return true;
  }

  bool close(kind k) {
    if (k == kind::object && depth_ == 3 && top_ == top_key::messages && !role_seen_) {
      auto path = message_path(message_index_ - 1);
      return fail(path + ": missing required field 'role'", path + ".role");
    }
    if (k == kind::array && depth_ == 2 && top_ == top_key::messages && message_index_ == 0) {
      return fail("messages: expected a non-empty array of messages", "messages");
    }
    --depth_;
    if (depth_ == 1) {
      end_member(is_.Tell() + 1);  // the handler runs before the closing bracket is consumed
    }
    return true;
  }

  bool scalar(const sax_value& v) {
    if (!value(v)) {
      return false;
    }
    if (depth_ == 1) {
      end_member(is_.Tell());  // scalars are reported once fully consumed
    }
    return true;
  }

  bool value(const sax_value& v) {
    switch (depth_) {
      case 0:
        return v.type == kind::object || fail("the request body must be a JSON object");
      case 1:
        return top_value(v);
      case 2:
        return nested_value(v);
      case 3:
        if (top_ == top_key::messages) {
          return message_member(v);
        }
        return true;
      default:
        return true;
    }
  }

  bool top_value(const sax_value& v) {
    switch (top_) {
      case top_key::model:
        if (v.type != kind::string || v.text.empty()) {
          return fail("model: expected a non-empty string", "model");
        }
        req_.model.assign(v.text);
        saw_model_ = true;
        return true;
      case top_key::messages:
        if (v.type != kind::array) {
          return fail("messages: expected a non-empty array of messages", "messages");
        }
        saw_messages_ = true;
        message_index_ = 0;
        return true;
      case top_key::stream:
        if (v.type != kind::boolean && v.type != kind::null) {
          return fail("stream: expected a boolean", "stream");
        }
        req_.stream = v.boolean;
        return true;
      case top_key::stream_options:
        if (v.type != kind::object && v.type != kind::null) {
          return fail("stream_options: expected an object", "stream_options");
        }
        req_.include_usage = false;
        return true;
      case top_key::n:
        req_.n = v.integer.value_or(1);
        return true;
      case top_key::tools:
        req_.has_tools = false;  // a repeated member replaces the earlier one
        return true;
      case top_key::other:
        return true;
    }
    return true;
  }

  bool nested_value(const sax_value& v) {
    switch (top_) {
      case top_key::messages:
        if (v.type != kind::object) {
          auto path = message_path(message_index_);
          return fail(path + ": expected an object", path);
        }
        if (max_messages_ != 0 && message_index_ >= max_messages_) {
          return fail("messages: too many messages: at most " + std::to_string(max_messages_)
                          + " are accepted",
                      "messages");
        }
        ++message_index_;
        role_seen_ = false;
        message_key_ = message_key::other;
        return true;
      case top_key::tools:
        req_.has_tools = true;
        return true;
      case top_key::stream_options:
        if (include_usage_key_) {
          if (v.type != kind::boolean && v.type != kind::null) {
            return fail("stream_options.include_usage: expected a boolean",
                        "stream_options.include_usage");
          }
          req_.include_usage = v.boolean;
        }
        return true;
      default:
        return true;
    }
  }

  // A value directly inside message object number `message_index_ - 1`.
  bool message_member(const sax_value& v) {
    switch (message_key_) {
      case message_key::role:
        if (v.type != kind::string) {
          auto path = message_path(message_index_ - 1) + ".role";
          return fail(path + ": expected a string", path);
        }
        role_seen_ = true;
        if (v.text == "developer") {
          req_.has_developer_messages = true;
        }
        return true;
      case message_key::name:
        req_.has_message_names = true;
        return true;
      case message_key::reasoning_content:
        req_.has_reasoning_content = true;
        return true;
      case message_key::other:
        return true;
    }
    return true;
  }

  chat_request& req_;
  const rapidjson::MemoryStream& is_;
  int max_depth_;
  std::size_t max_messages_;
  int depth_ = 0;
  std::size_t cursor_ = 0;  ///< where the next top-level member may start
  top_key top_ = top_key::other;
  message_key message_key_ = message_key::other;
  std::size_t message_index_ = 0;  ///< messages seen so far in the current `messages` array
  bool role_seen_ = false;
  bool include_usage_key_ = false;
  bool saw_model_ = false;
  bool saw_messages_ = false;
  std::optional<error> failure_;
};

}  // namespace

std::string_view unescape_key(std::string_view raw, std::string& scratch) {
  std::size_t first = raw.find('\\');
  if (first == std::string_view::npos) {
    return raw;
  }
  scratch.assign(raw.substr(0, first));
  for (std::size_t i = first; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      scratch.push_back(c);
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'b':
        scratch.push_back('\b');
        break;
      case 'f':
        scratch.push_back('\f');
        break;
      case 'n':
        scratch.push_back('\n');
        break;
      case 'r':
        scratch.push_back('\r');
        break;
      case 't':
        scratch.push_back('\t');
        break;
      case 'u': {
        long cp = read_hex4(raw, i + 1);
        if (cp < 0) {
          append_utf8(scratch, 0xFFFD);
          break;
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long low = (i + 2 < raw.size() && raw[i + 1] == '\\' && raw[i + 2] == 'u')
                         ? read_hex4(raw, i + 3)
                         : -1;
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        append_utf8(scratch, static_cast<std::uint32_t>(cp));
        break;
      }
      default:  // `"`, `\`, `/` stand for themselves
        scratch.push_back(e);
        break;
    }
  }
  return scratch;
}

std::string_view to_string(client_api api) noexcept {
  switch (api) {
    case client_api::chat_completions:
      return "chat_completions";
    case client_api::responses:
      return "responses";
    case client_api::messages:
      return "messages";
    case client_api::count_tokens:
      return "count_tokens";
    case client_api::embeddings:
      return "embeddings";
  }
  return "chat_completions";
}

std::optional<std::string_view> chat_request::raw_value(std::string_view k) const noexcept {
  std::string scratch;  // used only by a key that holds an escape (rare)
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    std::string_view raw = key(*it);
    if (unescape_key(raw, scratch) == k) {
      return raw_value(*it);
    }
  }
  return std::nullopt;
}

result<chat_request> parse_chat_request(std::string body, const parse_limits& limits) {
  if (body.size() >= std::numeric_limits<std::uint32_t>::max()) {
    return error{errc::payload_too_large, "request body too large"};
  }
  chat_request req;
  req.body = std::move(body);
  req.members.reserve(16);

  rapidjson::MemoryStream is(req.body.data(), req.body.size());
  request_handler handler(req, is, limits);
  rapidjson::Reader reader;
  constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag;
  // UTF-8 validation costs about as much as the parse itself: pure-ASCII bodies (most of them)
  // cannot hold invalid UTF-8, so only the others pay for it.
  rapidjson::ParseResult ok =
      is_ascii(req.body) ? reader.Parse<flags>(is, handler)
                         : reader.Parse<flags | rapidjson::kParseValidateEncodingFlag>(is, handler);
  if (handler.failure()) {
    return *handler.failure();
  }
  if (!ok) {
    return error{errc::invalid_request,
                 std::string("We could not parse the JSON body of your request: ")
                     + rapidjson::GetParseError_En(ok.Code()) + " (at byte "
                     + std::to_string(ok.Offset()) + ")"};
  }
  // The parser stopped after the root value: only whitespace may follow (this also refuses
  // bytes hidden behind a NUL, which the stream reports as the end of input).
  for (std::size_t i = is.Tell(); i < req.body.size(); ++i) {
    if (!is_json_space(req.body[i])) {
      return error{errc::invalid_request,
                   "We could not parse the JSON body of your request: unexpected data after the "
                   "JSON object (at byte "
                       + std::to_string(i) + ")"};
    }
  }
  if (!handler.saw_model()) {
    return error{errc::invalid_request, "you must provide a model parameter", "model"};
  }
  if (limits.require_messages && !handler.saw_messages()) {
    return error{errc::invalid_request, "you must provide a messages parameter", "messages"};
  }
  return req;
}

bool exceeds_depth(std::string_view text, int max_depth) noexcept {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return true;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) {
          --depth;
        }
        break;
      default:
        break;
    }
  }
  return false;
}

}  // namespace ib::providers
