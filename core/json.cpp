#include "core/json.hpp"

#include <array>
#include <cstring>
#include <vector>

namespace ib {

namespace {

/// The length of the well-formed UTF-8 sequence at `text[i]` (whose first byte is >= 0x80), or
/// 0 when it is not one (RFC 3629 §4: no overlong forms, no surrogates, nothing past U+10FFFF,
/// no truncated sequence).
std::size_t utf8_sequence(std::string_view text, std::size_t i) noexcept {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char c = at(0);
  std::size_t len = 0;
  unsigned char lo = 0x80;  // the range of the second byte
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;
    hi = c == 0xED ? 0x9F : 0xBF;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (i + len > text.size() || at(1) < lo || at(1) > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < len; ++k) {
    if ((at(k) & 0xC0) != 0x80) {
      return 0;
    }
  }
  return len;
}

/// The index of the first byte of `text` that is not well-formed UTF-8, or `text.size()`.
std::size_t first_invalid(std::string_view text) noexcept {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    // ASCII runs, the common case, eight bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t block = 0;
      std::memcpy(&block, text.data() + i, 8);
      if ((block & 0x8080808080808080ULL) != 0) {
        break;
      }
      i += 8;
    }
    if (i >= n) {
      break;
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = utf8_sequence(text, i);
    if (len == 0) {
      return i;
    }
    i += len;
  }
  return n;
}

/// ASCII bytes a JSON string holds as they are (RFC 8259 §7): not a control, `"` or `\\`.
constexpr auto plain_ascii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) {
    t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  }
  return t;
}();

/// The length of the longest prefix of `text` that a JSON string may hold as it is: well-formed
/// UTF-8 without control characters, `"` or `\`.
std::size_t plain_prefix(std::string_view text) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    // Eight plain ASCII bytes at a time: no high bit, none below 0x20, no '"', no '\'.
    while (i + 8 <= n) {
      std::uint64_t x = 0;
      std::memcpy(&x, text.data() + i, 8);
      const std::uint64_t quote = x ^ (ones * 0x22);
      const std::uint64_t backslash = x ^ (ones * 0x5C);
      const std::uint64_t hits = (x & highs) | ((x - ones * 0x20) & ~x & highs)
                                 | ((quote - ones) & ~quote & highs)
                                 | ((backslash - ones) & ~backslash & highs);
      if (hits != 0) {
        break;
      }
      i += 8;
    }
    if (i >= n) {
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (plain_ascii[c]) {
      ++i;
    } else if (c >= 0x80) {
      std::size_t len = utf8_sequence(text, i);
      if (len == 0) {
        return i;
      }
      i += len;
    } else {
      return i;  // a control character, '"' or '\\': RapidJSON escapes it
    }
  }
  return n;
}

}  // namespace

/// Forwards a DOM walk (`Value::Accept`) to a json_writer, so that its strings are checked.
struct json_dom_handler {
  json_writer& w;

  bool Null() {
    w.null();
    return true;
  }
  bool Bool(bool b) {
    w.boolean(b);
    return true;
  }
  bool Int(int x) {
    w.integer(x);
    return true;
  }
  bool Uint(unsigned x) {
    w.unsigned_integer(x);
    return true;
  }
  bool Int64(std::int64_t x) {
    w.integer(x);
    return true;
  }
  bool Uint64(std::uint64_t x) {
    w.unsigned_integer(x);
    return true;
  }
  bool Double(double d) { return w.w_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType len, bool) {
    return w.w_.RawNumber(s, len);  // digits only: a parser accepted them as a number
  }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    w.string(std::string_view(s, len));
    return true;
  }
  bool StartObject() {
    w.start_object();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    w.key(std::string_view(s, len));
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    w.end_object();
    return true;
  }
  bool StartArray() {
    w.start_array();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    w.end_array();
    return true;
  }
};

bool is_valid_utf8(std::string_view text) noexcept {
  return first_invalid(text) == text.size();
}

void append_utf8_replacing_invalid(std::string& out, std::string_view text) {
  std::size_t i = first_invalid(text);
  out.reserve(out.size() + text.size() + 8);
  out.append(text.data(), i);
  while (i < text.size()) {
    // text[i] starts no well-formed sequence: U+FFFD for this one byte, then go on.
    out += "\xEF\xBF\xBD";
    ++i;
    std::size_t rest = first_invalid(text.substr(i));
    out.append(text.data() + i, rest);
    i += rest;
  }
}

std::string_view json_writer::valid(std::string_view text) {
  if (is_valid_utf8(text)) {
    return text;  // the fast path: nothing to copy
  }
  scratch_.clear();
  append_utf8_replacing_invalid(scratch_, text);
  return scratch_;
}

void json_writer::write_string(std::string_view text, bool is_key) {
  if (plain_prefix(text) == text.size()) {
    // What RapidJSON would write, in bulk: an empty raw value of string type makes it write
    // the separator (`,` or `:`) and count the key or value, then the quoted text follows.
    w_.RawValue("", 0, rapidjson::kStringType);
    sink_.Put('"');
    sink_.write(text.data(), text.size());
    sink_.Put('"');
    if (w_.IsComplete()) {
      sink_.Flush();  // a root string: complete, as RapidJSON would leave it
    }
    return;
  }
  auto s = valid(text);
  if (is_key) {
    w_.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  } else {
    w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
}

json_writer& json_writer::raw(std::string_view json, rapidjson::Type type) {
  // RapidJSON copies a raw value byte by byte: let it write the separator, then copy in bulk.
  w_.RawValue("", 0, type);
  sink_.write(json.data(), json.size());
  if (w_.IsComplete()) {
    sink_.Flush();
  }
  return *this;
}

json_writer& json_writer::key(std::string_view name) {
  write_string(name, true);
  return *this;
}

json_writer& json_writer::string(std::string_view text) {
  write_string(text, false);
  return *this;
}

json_writer& json_writer::value(const rapidjson::Value& root) {
  // An explicit stack instead of `Value::Accept`'s recursion: documents are parsed iteratively
  // (json::parse_flags), so an upstream's document may be nested far deeper than the call stack
  // could follow. Each frame is a container and the index of its next element.
  struct frame {
    const rapidjson::Value* container;
    rapidjson::SizeType next;
  };
  std::vector<frame> stack;
  json_dom_handler h{*this};
  auto write_or_open = [&](const rapidjson::Value& v) {
    if (v.IsObject()) {
      start_object();
      stack.push_back({&v, 0});
    } else if (v.IsArray()) {
      start_array();
      stack.push_back({&v, 0});
    } else {
      v.Accept(h);  // a scalar: no recursion
    }
  };
  write_or_open(root);
  while (!stack.empty()) {
    const rapidjson::Value& c = *stack.back().container;
    const rapidjson::SizeType i = stack.back().next++;
    if (c.IsObject()) {
      if (i == c.MemberCount()) {
        end_object();
        stack.pop_back();
        continue;
      }
      const auto& m = *(c.MemberBegin() + i);
      key(std::string_view(m.name.GetString(), m.name.GetStringLength()));
      write_or_open(m.value);  // may grow the stack: no reference into it is held here
    } else {
      if (i == c.Size()) {
        end_array();
        stack.pop_back();
        continue;
      }
      write_or_open(c[i]);
    }
  }
  return *this;
}

}  // namespace ib
