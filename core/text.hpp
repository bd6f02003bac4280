#pragma once

#include <cstddef>
#include <string_view>

/// ASCII text helpers shared by the protocol code (HTTP tokens, media types, URL schemes).
namespace ib {

/// `c` lower-cased if it is an ASCII capital letter; any other byte unchanged (UTF-8 safe).
constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Whether `s` begins with `prefix`, ASCII letters compared without case (RFC 9110 tokens,
/// media types and URL schemes are case-insensitive).
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(s[i]) != ascii_lower(prefix[i])) {
      return false;
    }
  }
  return true;
}

/// Whether `a` and `b` are equal, ASCII letters compared without case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && istarts_with(a, b);
}

}  // namespace ib
