#include "core/request_record.hpp"

#include "core/error.hpp"

namespace ib {

namespace {

void append_key(std::string& out, std::string_view key) {
  append_json_string(out, key);
  out.push_back(':');
}

void append_string_or_null(std::string& out, std::string_view text) {
  if (text.empty()) {
    out.append("null");
  } else {
    append_json_string(out, text);
  }
}

void append_int(std::string& out, std::int64_t x) {
  out.append(std::to_string(x));
}

/// Floor division, so that times before 1970 still round down to a whole second.
std::int64_t to_unix_seconds(std::int64_t us) noexcept {
  constexpr std::int64_t per_s = 1'000'000;
  std::int64_t s = us / per_s;
  if (us % per_s < 0) {
    --s;
  }
  return s;
}

void append_attempt(std::string& out, const attempt_record& a) {
  out.push_back('{');
  append_key(out, "provider");
  append_json_string(out, a.provider);
  out.push_back(',');
  if (a.status != 0) {
    append_key(out, "status");
    append_int(out, a.status);
  } else {
    append_key(out, "reason");
    append_string_or_null(out, a.reason);
  }
  out.push_back(',');
  append_key(out, "latency_ms");
  append_int(out, a.latency_ms);
  out.push_back('}');
}

}  // namespace

std::string to_json(const request_record& r) {
  std::string out;
  out.reserve(256 + 64 * r.attempts.size());
  out.push_back('{');
  append_key(out, "id");
  append_json_string(out, r.id);
  out.push_back(',');
  append_key(out, "created");
  append_int(out, to_unix_seconds(r.created_us));
  out.push_back(',');
  append_key(out, "tier");
  append_string_or_null(out, r.tier);
  out.push_back(',');
  append_key(out, "model");
  append_json_string(out, r.model);
  out.push_back(',');
  append_key(out, "provider");
  append_string_or_null(out, r.provider);
  out.push_back(',');
  append_key(out, "upstream_model");
  append_string_or_null(out, r.upstream_model);
  out.push_back(',');
  append_key(out, "attempts");
  out.push_back('[');
  for (std::size_t i = 0; i < r.attempts.size(); ++i) {
    if (i != 0) {
      out.push_back(',');
    }
    append_attempt(out, r.attempts[i]);
  }
  out.push_back(']');
  out.push_back(',');
  append_key(out, "status");
  append_int(out, r.status);
  out.push_back(',');
  append_key(out, "latency_ms");
  append_int(out, r.latency_ms);
  out.push_back(',');
  append_key(out, "ttfb_ms");
  if (r.ttfb_ms) {
    append_int(out, *r.ttfb_ms);
  } else {
    out.append("null");
  }
  out.push_back(',');
  append_key(out, "stream");
  out.append(r.stream ? "true" : "false");
  out.push_back(',');
  append_key(out, "usage");
  if (r.tokens) {
    out.push_back('{');
    append_key(out, "prompt_tokens");
    append_int(out, r.tokens->prompt_tokens);
    out.push_back(',');
    append_key(out, "completion_tokens");
    append_int(out, r.tokens->completion_tokens);
    out.push_back(',');
    append_key(out, "total_tokens");
    append_int(out, r.tokens->total_tokens);
    out.push_back('}');
  } else {
    out.append("null");
  }
  out.push_back('}');
  return out;
}

}  // namespace ib
