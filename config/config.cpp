#include "config/config.hpp"

#include <algorithm>
#include <cctype>

#include "core/text.hpp"

namespace ib::config {

std::string_view to_string(protocol p) noexcept {
  switch (p) {
    case protocol::openai:
      return "openai";
    case protocol::anthropic:
      return "anthropic";
  }
  return "unknown";
}

std::string_view to_string(auth_style a) noexcept {
  switch (a) {
    case auth_style::bearer:
      return "bearer";
    case auth_style::x_api_key:
      return "x-api-key";
    case auth_style::api_subscription_key:
      return "api-subscription-key";
  }
  return "unknown";
}

namespace {

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

/// A DNS name or IPv4 literal: labels of letters, digits, '-' and '_', separated by dots.
bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 253) {
    return false;
  }
  std::size_t label = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const char c = h[i];
    if (c == '.') {
      if (label == 0) {
        return false;
      }
      label = 0;
    } else if (is_alnum(c) || c == '-' || c == '_') {
      if (++label > 63) {
        return false;
      }
    } else {
      return false;
    }
  }
  return true;  // a trailing dot (a rooted name) is fine
}

/// True when `h` consists of digits and dots only (then it must be a valid IPv4 literal).
bool looks_numeric(std::string_view h) {
  return !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
    return c == '.' || (c >= '0' && c <= '9');
  });
}

bool valid_ipv4(std::string_view h) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= h.size()) {
    std::size_t j = i;
    int value = 0;
    while (j < h.size() && h[j] >= '0' && h[j] <= '9' && j - i < 3) {
      value = value * 10 + (h[j] - '0');
      ++j;
    }
    if (j == i || value > 255) {
      return false;
    }
    ++parts;
    if (j == h.size()) {
      break;
    }
    if (h[j] != '.') {
      return false;
    }
    i = j + 1;
  }
  return parts == 4;
}

/// The text between brackets of an IPv6 literal: hex digits, ':' and an optional dotted tail.
bool valid_ipv6(std::string_view h) {
  if (h.size() < 2 || h.find(':') == std::string_view::npos) {
    return false;
  }
  return std::all_of(h.begin(), h.end(), [](char c) { return is_hex(c) || c == ':' || c == '.'; });
}

}  // namespace

result<host_port> parse_host_port(std::string_view text) {
  static constexpr std::string_view expected =
      "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)";
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return error{errc::invalid_request, std::string{expected}};
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (!valid_ipv6(host)) {
      return error{errc::invalid_request, std::string{expected}};
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return error{errc::invalid_request, std::string{expected}};
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (!valid_hostname(host) || (looks_numeric(host) && !valid_ipv4(host))) {
      return error{errc::invalid_request, std::string{expected}};
    }
  }
  if (port_text.empty() || port_text.size() > 5
      || !std::all_of(port_text.begin(), port_text.end(),
                      [](char c) { return c >= '0' && c <= '9'; })) {
    return error{errc::invalid_request, std::string{expected}};
  }
  int port = 0;
  for (const char c : port_text) {
    port = port * 10 + (c - '0');
  }
  if (port > 65535) {
    return error{errc::invalid_request, std::string{expected} + "; the port must be 0..65535"};
  }
  return host_port{std::string{host}, static_cast<std::uint16_t>(port)};
}

result<url> parse_url(std::string_view text) {
  const auto fail = [](std::string_view why) {
    return error{errc::invalid_request, std::string{why}};
  };
  url out;
  if (istarts_with(text, "https://")) {
    out.tls = true;
    out.port = 443;
    text.remove_prefix(8);
  } else if (istarts_with(text, "http://")) {
    out.tls = false;
    out.port = 80;
    text.remove_prefix(7);
  } else {
    return fail("expected an absolute http:// or https:// URL");
  }
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail("expected a URL without spaces or control characters");
    }
  }
  if (text.find_first_of("?#") != std::string_view::npos) {
    return fail("expected a URL without a query or fragment");
  }
  const auto slash = text.find('/');
  const std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return fail("expected a URL without userinfo (provider keys are stored per user)");
  }
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail("expected a closing ']' after the IPv6 address");
    }
    host = authority.substr(1, close - 1);
    if (!valid_ipv6(host)) {
      return fail("expected a valid IPv6 address between '[' and ']'");
    }
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return fail("expected ':' and a port after ']'");
      }
      port_text = rest.substr(1);
      if (port_text.empty()) {
        return fail("expected a port number after ':'");
      }
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        return fail("expected a port number after ':'");
      }
    }
    if (host.empty()) {
      return fail("expected a host");
    }
    if (!valid_hostname(host) || (looks_numeric(host) && !valid_ipv4(host))) {
      return fail("expected a valid host name or IP address");
    }
  }
  if (!port_text.empty()) {
    int port = 0;
    for (const char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        return fail("expected a port number 1..65535");
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      return fail("expected a port number 1..65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  out.host.assign(host);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(), ascii_lower);
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  out.path.assign(path);
  return out;
}

const provider_config* config::find_provider(std::string_view name) const noexcept {
  const auto it = std::find_if(providers.begin(), providers.end(),
                               [name](const provider_config& p) { return p.name == name; });
  return it == providers.end() ? nullptr : &*it;
}

const tier* config::find_tier(std::string_view name) const noexcept {
  const auto it =
      std::find_if(tiers.begin(), tiers.end(), [name](const tier& t) { return t.name == name; });
  return it == tiers.end() ? nullptr : &*it;
}

const tier* config::find_embedding_model(std::string_view name) const noexcept {
  const auto it = std::find_if(embedding_models.begin(), embedding_models.end(),
                               [name](const tier& t) { return t.name == name; });
  return it == embedding_models.end() ? nullptr : &*it;
}

}  // namespace ib::config
