#pragma once

#include <cstddef>
#include <string_view>

/// ASCII text helpers shared by the protocol code (HTTP tokens, media types, URL schemes).
namespace ib {

/// Whether `c` is an ASCII decimal digit (RFC 5234 DIGIT); locale-independent, unlike isdigit.
constexpr bool is_ascii_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

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

/// `s` without leading and trailing bytes from `chars` (default: JSON's whitespace, RFC 8259 §2;
/// pass " \t" for HTTP's optional whitespace, RFC 9110 §5.6.3): a view into `s`, empty when every
/// byte is in `chars`.
constexpr std::string_view trim(std::string_view s, std::string_view chars = " \t\r\n") noexcept {
  const auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) {
    return {};
  }
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

/// Whether `a` and `b` are equal, ASCII letters compared without case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && istarts_with(a, b);
}

}  // namespace ib
