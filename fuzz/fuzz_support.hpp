#pragma once

// Shared by the libFuzzer targets of fuzz/: invariant checks and input helpers.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace ib::fuzz {

/// Stops the run (a libFuzzer crash, with the input saved) when an invariant does not hold.
inline void check(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n%.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
  }
}

/// True when `text` is one complete JSON value (RFC 8259; RapidJSON's strict parser).
inline bool is_json(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  return !d.HasParseError();
}

/// True when `text` is a JSON object.
inline bool is_json_object(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  return !d.HasParseError() && d.IsObject();
}

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most
/// U+10FFFF).
inline bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= text.size()) {  // the sequence runs past the end
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (d & 0x3Fu);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))
        || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

/// Where to cut the input into reads: the sizes of successive pieces come from a seed byte, so
/// one input explores one way of splitting (a socket, an upstream body delivered in chunks).
class splitter {
 public:
  explicit splitter(std::uint8_t seed) : state_(seed | 1u) {}
  /// The size of the next piece: 1 to 64 bytes, or everything left when the seed says so.
  std::size_t next(std::size_t left) {
    if (state_ == 0xff) {
      return left;
    }
    state_ = static_cast<std::uint8_t>(state_ * 37u + 11u);
    std::size_t n = 1 + (state_ % 64u);
    return n < left ? n : left;
  }

 private:
  std::uint8_t state_;
};

}  // namespace ib::fuzz
