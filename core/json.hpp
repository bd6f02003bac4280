#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/writer.h>

/// The one JSON writer of the gateway: every byte of JSON that InferBridge itself generates
/// (error envelopes, translated completions and chunks, request records, listings) goes through
/// `json_writer`. Upstream JSON that is passed on unchanged is spliced, not rewritten.
namespace ib {

/// A RapidJSON output stream that appends to a `std::string` through a small buffer of its own
/// (bulk appends instead of one `push_back` per byte; no `StringBuffer` and no copy of the
/// whole output). Bytes reach the string on `Flush` (RapidJSON calls it when a root value is
/// complete), on `str()`, and on destruction.
class string_sink {
 public:
  using Ch = char;

  explicit string_sink(std::string& out) noexcept : out_(&out) {}
  string_sink(const string_sink&) = delete;
  string_sink& operator=(const string_sink&) = delete;
  ~string_sink() { Flush(); }

  /// Appends one byte.
  void Put(char c) {
    if (n_ == sizeof buf_) {
      Flush();
    }
    buf_[n_++] = c;
  }
  /// Appends `n` bytes.
  void write(const char* p, std::size_t n) {
    if (n == 0) {
      return;  // `p` may be null (an empty string_view)
    }
    if (n_ + n > sizeof buf_) {
      Flush();
      if (n > sizeof buf_ / 2) {
        out_->append(p, n);
        return;
      }
    }
    std::memcpy(buf_ + n_, p, n);
    n_ += n;
  }
  /// Moves the buffered bytes to the string.
  void Flush() {
    out_->append(buf_, n_);
    n_ = 0;
  }

  /// The string written to, holding every byte put so far.
  std::string& str() {
    Flush();
    return *out_;
  }

 private:
  std::string* out_;
  std::size_t n_ = 0;
  char buf_[256];
};

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// past U+10FFFF, no cut sequences or stray continuation bytes). Pure ASCII is checked 8 bytes
/// at a time.
bool is_valid_utf8(std::string_view text) noexcept;

/// Appends `text` to `out` with every byte that is not part of a well-formed UTF-8 sequence
/// replaced by U+FFFD (one replacement per byte, as `is_valid_utf8` defines it).
void append_utf8_replacing_invalid(std::string& out, std::string_view text);

class json_writer;

/// Writes JSON text (RFC 8259) into a `std::string`, appending to what the string holds, with
/// RapidJSON's `Writer` (compact: no whitespace).
///
/// Guarantees: strings and keys are always valid UTF-8 JSON strings, whatever bytes they are
/// given: bytes that are not well-formed UTF-8 become U+FFFD (RapidJSON's
/// `kWriteValidateEncodingFlag` would only fail the write); `"`, `\` and control characters are
/// escaped (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`, upper-case hex). Structure is checked
/// by RapidJSON (a key outside an object, an unbalanced end is an assertion in debug builds).
/// `raw` is the one way around these guarantees: it copies text as it is, for JSON that was
/// already parsed (e.g. an upstream member spliced into our output).
///
/// Several values may be written one after another (e.g. SSE events): call `reset` between
/// them. Bytes may be appended to `out()` between values (e.g. `data: `); the string itself
/// holds everything written once a root value is complete, `out()` is called, or the writer is
/// destroyed. Not thread-safe (one writer per call, on the caller's thread). Cheap to
/// construct: no heap allocation for up to 32 levels of nesting, and none for strings unless
/// one needs replacing.
class json_writer {
 public:
  /// A writer that appends to `out`, which must outlive it.
  explicit json_writer(std::string& out)
      : sink_(out), levels_(level_buffer_, sizeof level_buffer_), w_(sink_, &levels_, depth_hint) {}

  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;

  // -- structure ----------------------------------------------------------------------------

  /// `{`.
  json_writer& start_object() {
    w_.StartObject();
    return *this;
  }
  /// `}`.
  json_writer& end_object() {
    w_.EndObject();
    return *this;
  }
  /// `[`.
  json_writer& start_array() {
    w_.StartArray();
    return *this;
  }
  /// `]`.
  json_writer& end_array() {
    w_.EndArray();
    return *this;
  }
  /// An object member's name, quoted and escaped as `string` does; invalid UTF-8 becomes U+FFFD.
  json_writer& key(std::string_view name);

  // -- values -------------------------------------------------------------------------------

  /// A JSON string (RFC 8259 §7), quoted and escaped; invalid UTF-8 becomes U+FFFD.
  json_writer& string(std::string_view text);
  /// `text` as a string, or `null` when it is empty.
  json_writer& string_or_null(std::string_view text) {
    return text.empty() ? null() : string(text);
  }
  /// `null`.
  json_writer& null() {
    w_.Null();
    return *this;
  }
  /// `true` or `false`.
  json_writer& boolean(bool b) {
    w_.Bool(b);
    return *this;
  }
  /// A signed integer in decimal.
  json_writer& integer(std::int64_t x) {
    w_.Int64(x);
    return *this;
  }
  /// `x` in decimal, or `null` when it is empty.
  json_writer& integer_or_null(const std::optional<std::int64_t>& x) {
    return x ? integer(*x) : null();
  }
  /// An unsigned integer in decimal.
  json_writer& unsigned_integer(std::uint64_t x) {
    w_.Uint64(x);
    return *this;
  }
  /// A number: the shortest text that reads back as `d` (RapidJSON's Grisu2, e.g. `1.0`,
  /// `0.25`). Precondition: `d` is finite (NaN and infinities have no JSON form; RapidJSON
  /// refuses them and the output would lack this value).
  json_writer& number(double d) {
    w_.Double(d);
    return *this;
  }
  /// `json` copied as it is, as one value of type `type` (for the writer's bookkeeping). The
  /// caller vouches that it is one complete, valid JSON value (parsed before, or produced by a
  /// json_writer): nothing is checked.
  json_writer& raw(std::string_view json, rapidjson::Type type = rapidjson::kObjectType);
  /// A parsed value (a DOM tree), written compactly; its strings and keys go through `string`
  /// and `key`, so invalid UTF-8 in them becomes U+FFFD. Iterative: any depth is written (an
  /// upstream's document, parsed iteratively, is not depth-bounded), at heap cost per level.
  json_writer& value(const rapidjson::Value& v);

  // -- state --------------------------------------------------------------------------------

  /// True when one complete root value has been written.
  bool complete() const { return w_.IsComplete(); }
  /// Forgets the structure written so far, so that a next root value may follow.
  void reset() { w_.Reset(sink_); }
  /// The string written to, holding every byte written so far.
  std::string& out() { return sink_.str(); }

 private:
  friend struct json_dom_handler;

  /// `text` itself when valid, else a copy with U+FFFD in `scratch_`.
  std::string_view valid(std::string_view text);
  /// Writes `text` as a key (`is_key`) or string value: quoted as it is when it needs neither
  /// escaping nor replacing (the common case, in bulk), else through RapidJSON's escaper.
  void write_string(std::string_view text, bool is_key);

  /// Nesting levels the writer's stack holds without a heap allocation (deeper still works).
  static constexpr std::size_t depth_hint = 32;
  using level_allocator = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;
  using writer_type =
      rapidjson::Writer<string_sink, rapidjson::UTF8<>, rapidjson::UTF8<>, level_allocator>;

  string_sink sink_;
  // RapidJSON's writer keeps a stack of levels; by default its first push allocates an
  // allocator and the stack on the heap. This buffer makes a writer for one chunk heap-free.
  alignas(8) char level_buffer_[depth_hint * 16 + 64];
  level_allocator levels_;
  writer_type w_;
  std::string scratch_;
};

}  // namespace ib
