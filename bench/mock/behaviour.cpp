#include "bench/mock/behaviour.hpp"

#include <charconv>

namespace ib::mock {

namespace {

using std::chrono::milliseconds;

bool take_prefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) {
    return false;
  }
  s.remove_prefix(prefix.size());
  return true;
}

/// The whole of `s` as a decimal integer in [lo, hi].
std::optional<int> to_int(std::string_view s, int lo, int hi) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) {
    return std::nullopt;
  }
  return v;
}

std::optional<milliseconds> to_ms(std::string_view s) {
  auto v = to_int(s, 0, static_cast<int>(max_hold.count()));
  if (!v) {
    return std::nullopt;
  }
  return milliseconds{*v};
}

/// A Retry-After number: digits with at most one '.', as the SDKs accept floats.
bool is_seconds(std::string_view s) {
  int dots = 0;
  for (char ch : s) {
    if (ch == '.') {
      ++dots;
    } else if (ch < '0' || ch > '9') {
      return false;
    }
  }
  return !s.empty() && dots <= 1 && s.size() <= 12;
}

/// `ra-<secs>`, `ra-date-<secs>`, `ra-ms-<ms>`, `xsr-true`, `xsr-false` (without a leading dash).
bool apply_status_option(std::string_view opt, behaviour& b) {
  if (take_prefix(opt, "ra-date-")) {
    auto v = to_int(opt, 0, 100'000'000);
    if (!v) {
      return false;
    }
    b.retry_after_date_secs = *v;
    b.retry_after.reset();
    return true;
  }
  if (take_prefix(opt, "ra-ms-")) {
    if (!to_int(opt, 0, 100'000'000)) {
      return false;
    }
    b.retry_after_ms = std::string(opt);
    return true;
  }
  if (take_prefix(opt, "ra-")) {
    if (!is_seconds(opt)) {
      return false;
    }
    b.retry_after = std::string(opt);
    b.retry_after_date_secs = -1;
    return true;
  }
  if (opt == "xsr-true" || opt == "xsr-false") {
    b.should_retry = opt == "xsr-true";
    return true;
  }
  return false;
}

/// `status-<code>` followed by any `-ra-<secs>`, `-ra-date-<secs>`, `-ra-ms-<ms>`, `-xsr-<bool>`.
bool apply_status(std::string_view rest, behaviour& b) {
  std::vector<std::string_view> parts;
  for (auto dash = rest.find('-'); true; dash = rest.find('-')) {
    parts.push_back(rest.substr(0, dash));
    if (dash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(dash + 1);
  }
  auto code = to_int(parts[0], 200, 599);
  if (!code) {
    return false;
  }
  b.kind = reply_kind::status;
  b.status = *code;
  for (std::size_t i = 1; i < parts.size();) {
    // Each option is two or three dash-separated words; re-join them and apply as one.
    std::size_t words =
        parts[i] == "ra" && i + 1 < parts.size() && (parts[i + 1] == "date" || parts[i + 1] == "ms")
            ? 3
            : 2;
    if (i + words > parts.size()) {
      return false;
    }
    std::string opt(parts[i]);
    for (std::size_t w = 1; w < words; ++w) {
      opt += '-';
      opt += parts[i + w];
    }
    if (!apply_status_option(opt, b)) {
      return false;
    }
    i += words;
  }
  return true;
}

/// `name` or `name-<k>`; k defaults to `fallback`.
bool apply_cut(std::string_view rest, cut_kind cut, int fallback, behaviour& b) {
  int k = fallback;
  if (!rest.empty()) {
    if (!take_prefix(rest, "-")) {
      return false;
    }
    auto v = to_int(rest, 0, 100'000);
    if (!v) {
      return false;
    }
    k = *v;
  }
  b.cut = cut;
  b.cut_after = k;
  return true;
}

bool apply_flag(std::string_view tok, behaviour& b) {
  struct flag {
    std::string_view name;
    bool behaviour::*field;
  };
  static constexpr flag flags[] = {
      {"malformed-event", &behaviour::malformed_event},
      {"empty-choices", &behaviour::empty_choices},
      {"crlf", &behaviour::crlf},
      {"multiline-data", &behaviour::multiline_data},
      {"split-utf8", &behaviour::split_utf8},
      {"trickle", &behaviour::trickle},
      {"big", &behaviour::big},
      {"burst", &behaviour::burst},
      {"stamp", &behaviour::stamp},
      {"reasoner", &behaviour::reasoner},
  };
  for (const auto& f : flags) {
    if (tok == f.name) {
      b.*f.field = true;
      return true;
    }
  }
  return false;
}

bool apply_simple_kind(std::string_view tok, behaviour& b) {
  struct simple {
    std::string_view name;
    reply_kind kind;
  };
  static constexpr simple kinds[] = {
      {"ok", reply_kind::ok},
      {"reset-before", reply_kind::reset_before},
      {"malformed-body", reply_kind::malformed_body},
      {"error-200", reply_kind::error_200},
  };
  for (const auto& k : kinds) {
    if (tok == k.name) {
      b.kind = k.kind;
      b.status = 200;
      return true;
    }
  }
  return false;
}

bool apply_truncate(std::string_view tok, behaviour& b) {
  if (tok == "truncate-fin") {
    b.cut = cut_kind::truncate_fin;
  } else if (tok == "truncate-chunked") {
    b.cut = cut_kind::truncate_chunked;
  } else if (tok == "truncate-length") {
    b.cut = cut_kind::truncate_length;
  } else {
    return false;
  }
  return true;
}

/// A token with a millisecond argument: `<name>-<ms>`.
bool apply_timing(std::string_view tok, behaviour& b) {
  struct timing {
    std::string_view prefix;
    milliseconds behaviour::*field;
  };
  static constexpr timing timings[] = {
      {"stall-headers-", &behaviour::stall_headers},
      {"latency-", &behaviour::stall_headers},
      {"stall-first-byte-", &behaviour::stall_first_byte},
      {"chunk-delay-", &behaviour::chunk_delay},
  };
  for (const auto& t : timings) {
    auto rest = tok;
    if (take_prefix(rest, t.prefix)) {
      auto ms = to_ms(rest);
      if (!ms) {
        return false;
      }
      b.*t.field = *ms;
      return true;
    }
  }
  if (take_prefix(tok, "keepalive-")) {
    auto ms = to_ms(tok);
    if (!ms || ms->count() < 1) {
      return false;
    }
    b.kind = reply_kind::keepalive;
    b.keepalive_every = *ms;
    return true;
  }
  return false;
}

/// `html-<code>` and `empty-<code>`.
bool apply_coded_body(std::string_view tok, behaviour& b) {
  reply_kind kind{};
  if (take_prefix(tok, "html-")) {
    kind = reply_kind::html;
  } else if (take_prefix(tok, "empty-")) {
    kind = reply_kind::empty;
  } else {
    return false;
  }
  auto code = to_int(tok, 200, 599);
  if (!code) {
    return false;
  }
  b.kind = kind;
  b.status = *code;
  return true;
}

bool apply_token(std::string_view tok, behaviour& b) {
  if (apply_simple_kind(tok, b) || apply_flag(tok, b) || apply_truncate(tok, b)
      || apply_timing(tok, b) || apply_coded_body(tok, b) || apply_status_option(tok, b)) {
    return true;
  }
  auto rest = tok;
  if (take_prefix(rest, "status-")) {
    return apply_status(rest, b);
  }
  if (take_prefix(rest, "chunks-")) {
    auto n = to_int(rest, 1, 10'000);
    if (!n) {
      return false;
    }
    b.content_chunks = *n;
    return true;
  }
  if (take_prefix(rest, "stall-mid")) {
    return apply_cut(rest, cut_kind::stall_mid, 1, b);
  }
  if (take_prefix(rest, "reset-mid")) {
    return apply_cut(rest, cut_kind::reset_mid, 1, b);
  }
  if (take_prefix(rest, "inband-error")) {
    return apply_cut(rest, cut_kind::inband_error, 0, b);
  }
  return false;
}

std::string_view view(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// A header value from a step: a string or a number, without CR/LF.
std::optional<std::string> header_value(const rapidjson::Value& v) {
  std::string out;
  if (v.IsString()) {
    out = std::string(view(v));
  } else if (v.IsInt64()) {
    out = std::to_string(v.GetInt64());
  } else if (v.IsNumber()) {
    out = std::to_string(v.GetDouble());
  } else {
    return std::nullopt;
  }
  if (out.find_first_of("\r\n") != std::string::npos) {
    return std::nullopt;
  }
  return out;
}

bool is_token_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
         || ch == '-' || ch == '_';
}

}  // namespace

std::string apply_tokens(std::string_view spec, behaviour& b) {
  if (spec.empty()) {
    return "empty behaviour";
  }
  while (true) {
    auto plus = spec.find('+');
    auto tok = spec.substr(0, plus);
    take_prefix(tok, "mock-");
    if (tok.empty() || !apply_token(tok, b)) {
      return "unknown mock behaviour '" + std::string(tok) + "'";
    }
    if (plus == std::string_view::npos) {
      return {};
    }
    spec.remove_prefix(plus + 1);
  }
}

std::string parse_step(const rapidjson::Value& step, behaviour& b) {
  if (!step.IsObject()) {
    return "a step must be an object";
  }
  // `behaviour` first, so the explicit fields below refine it whatever their order.
  for (const char* key : {"behaviour", "behavior"}) {
    auto it = step.FindMember(key);
    if (it != step.MemberEnd()) {
      if (!it->value.IsString()) {
        return std::string(key) + ": expected a string";
      }
      if (auto err = apply_tokens(view(it->value), b); !err.empty()) {
        return std::string(key) + ": " + err;
      }
    }
  }
  for (const auto& m : step.GetObject()) {
    auto key = view(m.name);
    const auto& v = m.value;
    if (key == "behaviour" || key == "behavior") {
      continue;
    }
    if (key == "ok") {
      if (!v.IsBool()) {
        return "ok: expected a boolean";
      }
      if (v.GetBool()) {
        b.kind = reply_kind::ok;
        b.status = 200;
      }
    } else if (key == "status") {
      if (!v.IsInt() || v.GetInt() < 200 || v.GetInt() > 599) {
        return "status: expected an integer in 200..599";
      }
      b.status = v.GetInt();
      if (b.kind == reply_kind::ok || b.kind == reply_kind::status) {
        b.kind = b.status == 200 ? reply_kind::ok : reply_kind::status;
      }
    } else if (key == "retry_after") {
      auto h = header_value(v);
      if (!h) {
        return "retry_after: expected a string or number";
      }
      b.retry_after = std::move(*h);
    } else if (key == "retry_after_ms") {
      auto h = header_value(v);
      if (!h) {
        return "retry_after_ms: expected a string or number";
      }
      b.retry_after_ms = std::move(*h);
    } else if (key == "x_should_retry") {
      if (v.IsBool()) {
        b.should_retry = v.GetBool();
      } else if (v.IsString() && (view(v) == "true" || view(v) == "false")) {
        b.should_retry = view(v) == "true";
      } else {
        return "x_should_retry: expected a boolean";
      }
    } else if (key == "body") {
      if (!v.IsString()) {
        return "body: expected a string";
      }
      b.body = std::string(view(v));
      b.kind = reply_kind::raw;
    } else if (key == "content_type") {
      auto h = header_value(v);
      if (!h || !v.IsString()) {
        return "content_type: expected a string";
      }
      b.content_type = std::move(*h);
    } else if (key == "delay_ms") {
      if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > max_hold.count()) {
        return "delay_ms: expected an integer in 0..600000";
      }
      b.stall_headers = std::chrono::milliseconds{v.GetInt()};
    } else if (key == "headers") {
      if (!v.IsObject()) {
        return "headers: expected an object";
      }
      for (const auto& h : v.GetObject()) {
        auto name = view(h.name);
        auto value = header_value(h.value);
        bool name_ok = !name.empty();
        for (char ch : name) {
          name_ok = name_ok && is_token_char(ch);
        }
        if (!name_ok || !value) {
          return "headers: expected {\"name\": \"value\"} with token names";
        }
        b.headers.emplace_back(std::string(name), std::move(*value));
      }
    } else {
      return "unknown step field '" + std::string(key) + "'";
    }
  }
  return {};
}

}  // namespace ib::mock
