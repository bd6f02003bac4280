#include "core/request_record.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "core/json.hpp"

namespace ib {

namespace {

/// Floor division, so that times before 1970 still round down to a whole second.
std::int64_t to_unix_seconds(std::int64_t us) noexcept {
  constexpr std::int64_t per_s = 1'000'000;
  std::int64_t s = us / per_s;
  if (us % per_s < 0) {
    --s;
  }
  return s;
}

/// `{"provider","status"|"reason","latency_ms"}`; an empty reason is null when `reason_or_null`.
void write_attempt(json_writer& w, const attempt_record& a, bool reason_or_null) {
  w.start_object();
  w.key("provider").string(a.provider);
  if (a.status != 0) {
    w.key("status").integer(a.status);
  } else if (reason_or_null) {
    w.key("reason").string_or_null(a.reason);
  } else {
    w.key("reason").string(a.reason);
  }
  w.key("latency_ms").integer(a.latency_ms);
  w.end_object();
}

constexpr unsigned char stored_version = 1;
constexpr unsigned char flag_stream = 1;
constexpr unsigned char flag_ttfb = 2;
constexpr unsigned char flag_usage = 4;

void put_varint(std::string& out, std::uint64_t x) {
  while (x >= 0x80) {
    out.push_back(static_cast<char>((x & 0x7f) | 0x80));
    x >>= 7;
  }
  out.push_back(static_cast<char>(x));
}

void put_int(std::string& out, std::int64_t x) {
  put_varint(out, (static_cast<std::uint64_t>(x) << 1) ^ static_cast<std::uint64_t>(x >> 63));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

/// Reads `to_stored`'s fields in order; the first failure sticks (`ok` false) and every later
/// read returns a zero value, so the caller checks once at the end.
class stored_reader {
 public:
  explicit stored_reader(std::string_view in) noexcept : in_(in) {}

  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == in_.size(); }
  std::size_t left() const noexcept { return in_.size() - pos_; }

  unsigned char byte() noexcept {
    if (!ok_ || pos_ >= in_.size()) {
      ok_ = false;
      return 0;
    }
    return static_cast<unsigned char>(in_[pos_++]);
  }

  std::uint64_t varint() noexcept {
    std::uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const unsigned char b = byte();
      if (!ok_) {
        return 0;
      }
      if (shift == 63 && b > 1) {  // the tenth byte holds only the top bit
        ok_ = false;
        return 0;
      }
      x |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return x;
      }
    }
    ok_ = false;
    return 0;
  }

  std::int64_t integer() noexcept {
    const std::uint64_t z = varint();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }

  int small_int() noexcept {
    const std::int64_t x = integer();
    if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) {
      ok_ = false;
      return 0;
    }
    return static_cast<int>(x);
  }

  std::string string() {
    const std::uint64_t n = varint();
    if (!ok_ || n > left()) {
      ok_ = false;
      return {};
    }
    std::string s{in_.substr(pos_, static_cast<std::size_t>(n))};
    pos_ += static_cast<std::size_t>(n);
    return s;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string to_stored(const request_record& r) {
  std::string out;
  out.reserve(48 + r.tier.size() + r.model.size() + r.provider.size() + r.upstream_model.size()
              + 16 * r.attempts.size());
  out.push_back(static_cast<char>(stored_version));
  put_string(out, r.tier);
  put_string(out, r.model);
  put_string(out, r.provider);
  put_string(out, r.upstream_model);
  put_varint(out, r.attempts.size());
  for (const auto& a : r.attempts) {
    put_string(out, a.provider);
    put_int(out, a.status);
    if (a.status == 0) {
      put_string(out, a.reason);
    }
    put_int(out, a.latency_ms);
  }
  put_int(out, r.status);
  put_int(out, r.latency_ms);
  const unsigned char flags =
      (r.stream ? flag_stream : 0) | (r.ttfb_ms ? flag_ttfb : 0) | (r.tokens ? flag_usage : 0);
  out.push_back(static_cast<char>(flags));
  if (r.ttfb_ms) {
    put_int(out, *r.ttfb_ms);
  }
  if (r.tokens) {
    put_int(out, r.tokens->prompt_tokens);
    put_int(out, r.tokens->completion_tokens);
    put_int(out, r.tokens->total_tokens);
  }
  return out;
}

result<request_record> from_stored(std::string_view bytes) {
  stored_reader in(bytes);
  if (in.byte() != stored_version) {
    return error{errc::storage, "request log: a record of an unknown format"};
  }
  request_record r;
  r.tier = in.string();
  r.model = in.string();
  r.provider = in.string();
  r.upstream_model = in.string();
  const std::uint64_t n = in.varint();
  // An attempt takes at least three bytes (an empty provider, a status, a latency).
  if (in.ok() && n <= in.left() / 3) {
    r.attempts.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
      attempt_record a;
      a.provider = in.string();
      a.status = in.small_int();
      if (a.status == 0) {
        a.reason = in.string();
      }
      a.latency_ms = in.integer();
      r.attempts.push_back(std::move(a));
    }
  } else if (in.ok()) {
    return error{errc::storage, "request log: a record cut short"};
  }
  r.status = in.small_int();
  r.latency_ms = in.integer();
  const unsigned char flags = in.byte();
  if ((flags & ~(flag_stream | flag_ttfb | flag_usage)) != 0) {
    return error{errc::storage, "request log: a record of an unknown format"};
  }
  r.stream = (flags & flag_stream) != 0;
  if ((flags & flag_ttfb) != 0) {
    r.ttfb_ms = in.integer();
  }
  if ((flags & flag_usage) != 0) {
    usage u;
    u.prompt_tokens = in.integer();
    u.completion_tokens = in.integer();
    u.total_tokens = in.integer();
    r.tokens = u;
  }
  if (!in.ok()) {
    return error{errc::storage, "request log: a record cut short"};
  }
  if (!in.at_end()) {
    return error{errc::storage, "request log: a record with bytes left over"};
  }
  return r;
}

void write_json_attempts(json_writer& w, const std::vector<attempt_record>& attempts) {
  w.key("attempts").start_array();
  for (const auto& a : attempts) {
    write_attempt(w, a, true);
  }
  w.end_array();
}

void write_json(json_writer& w, const request_record& r) {
  w.start_object();
  w.key("id").string(r.id);
  w.key("created").integer(to_unix_seconds(r.created_us));
  w.key("tier").string_or_null(r.tier);
  w.key("model").string(r.model);
  w.key("provider").string_or_null(r.provider);
  w.key("upstream_model").string_or_null(r.upstream_model);
  write_json_attempts(w, r.attempts);
  w.key("status").integer(r.status);
  w.key("latency_ms").integer(r.latency_ms);
  w.key("ttfb_ms").integer_or_null(r.ttfb_ms);
  w.key("stream").boolean(r.stream);
  w.key("usage");
  if (r.tokens) {
    w.start_object();
    w.key("prompt_tokens").integer(r.tokens->prompt_tokens);
    w.key("completion_tokens").integer(r.tokens->completion_tokens);
    w.key("total_tokens").integer(r.tokens->total_tokens);
    w.end_object();
  } else {
    w.null();
  }
  w.end_object();
}

std::string overhead_ms_text(std::int64_t us) {
  if (us < 0) {
    us = 0;
  }
  auto frac = std::to_string(us % 1000);
  return std::to_string(us / 1000) + "." + std::string(3 - frac.size(), '0') + frac;
}

std::string to_json(const request_record& r) {
  std::string out;
  out.reserve(256 + 64 * r.attempts.size());
  json_writer w(out);
  write_json(w, r);
  return out;
}

std::string to_list_json(const std::vector<std::string>& records_json, bool has_more) {
  std::size_t size = 48;
  for (const auto& r : records_json) {
    size += r.size() + 1;
  }
  std::string out;
  out.reserve(size);
  json_writer w(out);
  w.start_object();
  w.key("object").string("list");
  w.key("data").start_array();
  for (const auto& r : records_json) {
    w.raw(r);  // written by to_json when the record was stored
  }
  w.end_array();
  w.key("has_more").boolean(has_more);
  w.end_object();
  return out;
}

std::string to_envelope(const error& err, const std::vector<attempt_record>& attempts) {
  std::string out;
  out.reserve(128 + err.message.size() + 64 * attempts.size());
  json_writer w(out);
  w.start_object().key("error").start_object();
  write_error_members(w, err);
  w.key("inferbridge_attempts").start_array();
  for (const auto& a : attempts) {
    write_attempt(w, a, false);
  }
  w.end_array();
  w.end_object().end_object();
  return out;
}

}  // namespace ib
