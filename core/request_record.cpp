#include "core/request_record.hpp"

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

}  // namespace

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
