#include "core/error.hpp"

namespace ib {

int http_status(errc code) noexcept {
  switch (code) {
    case errc::none:
      return 200;
    case errc::invalid_request:
      return 400;
    case errc::unauthorized:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::method_not_allowed:
      return 405;
    case errc::conflict:
      return 409;
    case errc::payload_too_large:
      return 413;
    case errc::unprocessable:
      return 422;
    case errc::no_provider_key:
      return 424;
    case errc::rate_limited:
      return 429;
    case errc::internal:
    case errc::storage:
    case errc::crypto:
      return 500;
    case errc::bad_gateway:
      return 502;
    case errc::unavailable:
      return 503;
    case errc::gateway_timeout:
      return 504;
  }
  return 500;
}

std::string_view error_type(errc code) noexcept {
  switch (code) {
    case errc::none:
      return "none";
    case errc::invalid_request:
    case errc::not_found:
    case errc::method_not_allowed:
    case errc::conflict:
    case errc::payload_too_large:
    case errc::unprocessable:
    case errc::no_provider_key:
      return "invalid_request_error";
    case errc::unauthorized:
      return "authentication_error";
    case errc::forbidden:
      return "permission_error";
    case errc::rate_limited:
      return "rate_limit_error";
    case errc::internal:
    case errc::storage:
    case errc::crypto:
      return "server_error";
    case errc::bad_gateway:
    case errc::unavailable:
    case errc::gateway_timeout:
      return "upstream_error";
  }
  return "server_error";
}

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

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (auto len = utf8_sequence(text, i); len != 0) {
        i += len;
        continue;
      }
      // Not UTF-8 (bytes an upstream sent, a cut sequence): U+FFFD for this byte, then go on
      // with the next one, so that the output is always valid UTF-8 and so valid JSON.
      out.append(text.data() + run, i - run);
      out += "\xEF\xBF\xBD";
      run = ++i;
      continue;
    }
    out.append(text.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xf]);
    }
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

void open_envelope(std::string& out, std::string_view message, std::string_view type,
                   std::string_view param, std::string_view code) {
  out.reserve(out.size() + 80 + message.size() + type.size() + param.size() + code.size());
  out += R"({"error":{"message":)";
  append_json_string(out, message);
  out += R"(,"type":)";
  append_json_string(out, type);
  out += R"(,"param":)";
  if (param.empty()) {
    out += "null";
  } else {
    append_json_string(out, param);
  }
  out += R"(,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    append_json_string(out, code);
  }
}

std::string envelope(std::string_view message, std::string_view type, std::string_view param,
                     std::string_view code) {
  std::string out;
  open_envelope(out, message, type, param, code);
  out += "}}";
  return out;
}

std::string to_envelope(const error& err) {
  return envelope(err.message, error_type(err.code), err.param, err.detail_code);
}

}  // namespace ib
