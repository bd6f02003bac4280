#include "core/cluster_event.hpp"

#include <charconv>
#include <vector>

namespace ib {

namespace {

constexpr std::size_t max_name = 200;

bool is_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_name) {
    return false;
  }
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) {
      return false;
    }
  }
  return true;
}

bool parse_ms(std::string_view s, std::int64_t& out) noexcept {
  // Canonical decimal only (what `encode` writes): no sign, no leading zero.
  if (s.empty() || s.size() > 18 || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s.size() > 1)) {
    return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out >= 0;
}

std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto j = s.find(' ', i);
    if (j == std::string_view::npos) {
      j = s.size();
    }
    out.push_back(s.substr(i, j - i));
    i = j + 1;
    if (out.size() > 8) {
      break;
    }
  }
  return out;
}

error bad(std::string what) {
  return error{errc::invalid_request, "cluster event: " + what};
}

}  // namespace

std::string encode(const cluster_event& e) {
  struct visitor {
    std::string operator()(const key_event& k) const { return "k " + k.node + " " + k.user_id; }
    std::string operator()(const breaker_event& b) const {
      return "b " + b.node + " " + b.provider + " "
             + (b.state == breaker_state::open ? "open" : "closed") + " "
             + std::to_string(b.retry_at_ms) + " " + std::to_string(b.next_cooldown_ms);
    }
    std::string operator()(const cooldown_event& c) const {
      return "c " + c.node + " " + c.provider + " " + c.user_id + " " + std::to_string(c.until_ms);
    }
  };
  return std::visit(visitor{}, e);
}

result<cluster_event> decode(std::string_view payload) {
  auto f = fields(payload);
  if (f.empty() || f[0].size() != 1) {
    return bad("unknown kind");
  }
  for (std::size_t i = 1; i < f.size(); ++i) {
    if (!is_name(f[i])) {
      return bad("field " + std::to_string(i) + " is empty, too long or not printable");
    }
  }
  switch (f[0][0]) {
    case 'k':
      if (f.size() != 3) {
        return bad("a key event has 2 fields");
      }
      return cluster_event{key_event{std::string(f[1]), std::string(f[2])}};
    case 'b': {
      if (f.size() != 6) {
        return bad("a breaker event has 5 fields");
      }
      breaker_event b{std::string(f[1]), std::string(f[2])};
      if (f[3] == "open") {
        b.state = breaker_state::open;
      } else if (f[3] == "closed") {
        b.state = breaker_state::closed;
      } else {
        return bad("the state must be open or closed");
      }
      if (!parse_ms(f[4], b.retry_at_ms) || !parse_ms(f[5], b.next_cooldown_ms)) {
        return bad("times must be non-negative integers (ms)");
      }
      return cluster_event{std::move(b)};
    }
    case 'c': {
      if (f.size() != 5) {
        return bad("a cooldown event has 4 fields");
      }
      cooldown_event c{std::string(f[1]), std::string(f[2]), std::string(f[3])};
      if (!parse_ms(f[4], c.until_ms)) {
        return bad("the time must be a non-negative integer (ms)");
      }
      return cluster_event{std::move(c)};
    }
    default:
      return bad("unknown kind");
  }
}

const std::string& node_of(const cluster_event& e) noexcept {
  return std::visit([](const auto& x) -> const std::string& { return x.node; }, e);
}

}  // namespace ib
