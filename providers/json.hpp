#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace ib::providers::json {

// Checked accessors over RapidJSON values: RapidJSON's `GetString()` on a number asserts (or reads
// garbage in release), so every read of untrusted JSON goes through these.

/// The member `key` of `obj`, or nullptr when `obj` is not an object or has no such member.
inline const rapidjson::Value* member(const rapidjson::Value& obj, std::string_view key) noexcept {
  if (!obj.IsObject()) {
    return nullptr;
  }
  auto it = obj.FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

/// The string member `key` of `obj` (a view into the document), or nullopt when absent or not
/// a string.
inline std::optional<std::string_view> get_string(const rapidjson::Value& obj,
                                                  std::string_view key) noexcept {
  auto* v = member(obj, key);
  if (v == nullptr || !v->IsString()) {
    return std::nullopt;
  }
  return std::string_view(v->GetString(), v->GetStringLength());
}

/// The member `key` as a signed 64-bit integer, or nullopt when absent or not one (a float is
/// not).
inline std::optional<std::int64_t> get_int(const rapidjson::Value& obj,
                                           std::string_view key) noexcept {
  auto* v = member(obj, key);
  if (v == nullptr || !v->IsInt64()) {
    return std::nullopt;
  }
  return v->GetInt64();
}

/// The number member `key` as a double, or nullopt when absent or not a number.
inline std::optional<double> get_number(const rapidjson::Value& obj,
                                        std::string_view key) noexcept {
  auto* v = member(obj, key);
  if (v == nullptr || !v->IsNumber()) {
    return std::nullopt;
  }
  return v->GetDouble();
}

/// The boolean member `key`, or nullopt when absent or not a boolean.
inline std::optional<bool> get_bool(const rapidjson::Value& obj, std::string_view key) noexcept {
  auto* v = member(obj, key);
  if (v == nullptr || !v->IsBool()) {
    return std::nullopt;
  }
  return v->GetBool();
}

/// The array member `key`, or nullptr when absent or not an array.
inline const rapidjson::Value* get_array(const rapidjson::Value& obj,
                                         std::string_view key) noexcept {
  auto* v = member(obj, key);
  return v != nullptr && v->IsArray() ? v : nullptr;
}

/// The object member `key`, or nullptr when absent or not an object.
inline const rapidjson::Value* get_object(const rapidjson::Value& obj,
                                          std::string_view key) noexcept {
  auto* v = member(obj, key);
  return v != nullptr && v->IsObject() ? v : nullptr;
}

/// The text of a string value (a view into the document), or empty when `v` is not a string.
inline std::string_view view(const rapidjson::Value& v) noexcept {
  return v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view{};
}

/// Flags for parsing untrusted JSON: iterative (no recursion). Not kParseFullPrecisionFlag:
/// RapidJSON 1.1.0 (Debian 12) reads a zero with an exponent outside ±22 (`0e-44`) in that mode
/// through StrtodDiyFp, which calls __builtin_clzll(0) — undefined behaviour that returned garbage
/// (`0e-44` read as -4.5e-277); found by fuzz/anthropic_stream, regression tests in
/// tests/unit/providers/fuzz_regressions_test.cpp. The normal mode reads every number of up to
/// 15 significant digits exactly, which covers sampling parameters and token counts.
constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;

/// Parses `text` into `doc` with RapidJSON's fast string scanners (SIMD in release builds),
/// which read NUL-terminated text: `text` is first copied into a per-thread buffer. Valid JSON
/// never holds a raw NUL, so one in `text` is a parse error. Returns false on any error.
template <class Document>
bool parse_fast(Document& doc, std::string_view text) {
  if (std::memchr(text.data(), 0, text.size()) != nullptr) {
    return false;
  }
  thread_local std::string buffer;
  buffer.assign(text.data(), text.size());
  doc.template Parse<parse_flags>(buffer.c_str());
  bool ok = !doc.HasParseError();
  if (buffer.capacity() > (1u << 20)) {
    buffer = std::string{};  // do not keep a huge body's buffer alive per thread
  }
  return ok;
}

}  // namespace ib::providers::json
