#include "config/load.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include "core/text.hpp"

namespace ib::config {

namespace {

using rapidjson::Value;

// -- bounds --------------------------------------------------------------------------------------

constexpr std::int64_t max_ms = std::numeric_limits<std::int32_t>::max();  // ~24.8 days
constexpr std::int64_t max_bytes = std::int64_t{1} << 40;
constexpr std::int64_t max_threads = 1024;
constexpr std::int64_t max_pool_size = 10'000;

// -- errors and paths ----------------------------------------------------------------------------

error field_error(std::string_view path, std::string_view what) {
  std::string msg{path};
  msg += ": ";
  msg += what;
  return error{errc::invalid_request, std::move(msg), std::string{path}};
}

std::string join(std::string_view path, std::string_view key) {
  std::string out{path};
  if (!out.empty()) {
    out += '.';
  }
  out += key;
  return out;
}

std::string quoted(std::string_view s) {
  std::string out{"\""};
  out += s;
  out += '"';
  return out;
}

std::string_view name_of(const Value& key) {
  return {key.GetString(), key.GetStringLength()};
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

using field_list = std::initializer_list<std::string_view>;

/// Checks that `v` is an object whose members are all in `known` and appear once each.
result<void> check_object(const Value& v, std::string_view path, field_list known) {
  if (!v.IsObject()) {
    return field_error(path.empty() ? "config" : path, "expected an object");
  }
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const auto name = name_of(it->name);
    for (auto prev = v.MemberBegin(); prev != it; ++prev) {
      if (name_of(prev->name) == name) {
        return field_error(join(path, name), "duplicate field");
      }
    }
    if (std::find(known.begin(), known.end(), name) != known.end()) {
      continue;
    }
    std::string what = "unknown field";
    std::string_view best;
    std::size_t best_distance = 3;  // suggest only close matches: typos, not guesses
    for (const auto candidate : known) {
      const auto d = edit_distance(name, candidate);
      if (d < best_distance) {
        best = candidate;
        best_distance = d;
      }
    }
    if (!best.empty()) {
      what += " (did you mean " + quoted(best) + "?)";
    }
    return field_error(join(path, name), what);
  }
  return {};
}

/// Checks that every member name of the object `v` is unique (maps keyed by user-chosen names).
result<void> check_unique_keys(const Value& v, std::string_view path) {
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    for (auto prev = v.MemberBegin(); prev != it; ++prev) {
      if (name_of(prev->name) == name_of(it->name)) {
        return field_error(join(path, name_of(it->name)), "defined twice");
      }
    }
  }
  return {};
}

const Value* find(const Value& obj, std::string_view key) {
  const auto it = obj.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// -- typed field readers: each leaves `out` alone when the field is absent ---------------------

result<std::int64_t> to_int(const Value& v, std::string_view path, std::int64_t min,
                            std::int64_t max, bool range_message) {
  const std::string range =
      "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const std::string plain =
      min > 0 ? "expected a positive integer" : "expected a non-negative integer";
  if (!v.IsInt64()) {
    return field_error(path, range_message ? range : plain);
  }
  const std::int64_t x = v.GetInt64();
  if (x < min) {
    return field_error(path, range_message ? range : plain);
  }
  if (x > max) {
    return field_error(path, range);
  }
  return x;
}

template <class Int>
result<void> read_int(const Value& obj, std::string_view key, std::string_view path, Int& out,
                      std::int64_t min, std::int64_t max, bool range_message = false) {
  const Value* v = find(obj, key);
  if (v == nullptr) {
    return {};
  }
  auto x = to_int(*v, join(path, key), min, max, range_message);
  if (!x) {
    return std::move(x).error();
  }
  out = static_cast<Int>(*x);
  return {};
}

result<void> read_ms(const Value& obj, std::string_view key, std::string_view path,
                     milliseconds& out) {
  std::int64_t x = out.count();
  if (auto r = read_int(obj, key, path, x, 1, max_ms); !r) {
    return r;
  }
  out = milliseconds{x};
  return {};
}

result<void> read_string(const Value& obj, std::string_view key, std::string_view path,
                         std::string& out) {
  const Value* v = find(obj, key);
  if (v == nullptr) {
    return {};
  }
  if (!v->IsString() || v->GetStringLength() == 0) {
    return field_error(join(path, key), "expected a non-empty string");
  }
  out.assign(v->GetString(), v->GetStringLength());
  return {};
}

result<void> read_bool(const Value& obj, std::string_view key, std::string_view path, bool& out) {
  const Value* v = find(obj, key);
  if (v == nullptr) {
    return {};
  }
  if (!v->IsBool()) {
    return field_error(join(path, key), "expected true or false");
  }
  out = v->GetBool();
  return {};
}

template <class Enum>
struct choice {
  std::string_view text;
  Enum value;
};

template <class Enum, std::size_t N>
result<void> read_choice(const Value& obj, std::string_view key, std::string_view path, Enum& out,
                         const std::array<choice<Enum>, N>& choices, std::string_view expected) {
  const Value* v = find(obj, key);
  if (v == nullptr) {
    return {};
  }
  if (v->IsString()) {
    const std::string_view s{v->GetString(), v->GetStringLength()};
    for (const auto& c : choices) {
      if (c.text == s) {
        out = c.value;
        return {};
      }
    }
  }
  return field_error(join(path, key), expected);
}

// -- shipped providers ---------------------------------------------------------------------------

// The providers the gateway ships with are the entries of `providers` in config/default.json:
// there is no second list in code. A user's file may name one of them with just its `models`;
// it then inherits the fields below from the shipped entry (its timeouts, pool size and models
// stay the user's, or the defaults of config.hpp).
constexpr std::array<std::string_view, 6> inherited_fields{
    "protocol", "base_url", "auth", "anthropic_version", "dialect", "reasoning_models"};

/// The `providers` object of the shipped default, or null when it has none.
const Value* shipped_providers(const Value& shipped) {
  const auto it = shipped.FindMember("providers");
  return it == shipped.MemberEnd() || !it->value.IsObject() ? nullptr : &it->value;
}

/// The shipped entry called `name`, or null when `name` is not a shipped provider.
const Value* find_shipped(const Value* shipped, std::string_view name) {
  if (shipped == nullptr) {
    return nullptr;
  }
  const auto it = shipped->FindMember(Value(rapidjson::StringRef(name.data(), name.size())));
  return it == shipped->MemberEnd() ? nullptr : &it->value;
}

/// "openai, anthropic, ...": the shipped provider names, for error messages.
std::string shipped_names(const Value* shipped) {
  std::string out;
  if (shipped == nullptr) {
    return out;
  }
  for (auto it = shipped->MemberBegin(); it != shipped->MemberEnd(); ++it) {
    out += out.empty() ? "" : ", ";
    out += name_of(it->name);
  }
  return out;
}

/// `IB_<NAME>_BASE_URL`, the name upper-cased and every other character made '_'.
std::string base_url_env_name(std::string_view provider) {
  std::string out = "IB_";
  for (const char c : provider) {
    const auto u = static_cast<unsigned char>(c);
    out += std::isalnum(u) != 0 ? static_cast<char>(std::toupper(u)) : '_';
  }
  out += "_BASE_URL";
  return out;
}

bool valid_provider_name(std::string_view n) {
  if (n.empty() || n.size() > 64) {
    return false;
  }
  const auto lower_or_digit = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (!lower_or_digit(n.front())) {
    return false;
  }
  return std::all_of(n.begin(), n.end(),
                     [&](char c) { return lower_or_digit(c) || c == '-' || c == '_' || c == '.'; });
}

/// Checks `low <= high` for two fields of the object `v` at `path`, naming the one that was set
/// (the upper one when both were).
result<void> check_order(const Value& v, std::string_view path, std::string_view low_key,
                         milliseconds low, std::string_view high_key, milliseconds high) {
  if (low <= high) {
    return {};
  }
  if (find(v, high_key) != nullptr) {
    return field_error(join(path, high_key), "must be at least " + join(path, low_key) + " ("
                                                 + std::to_string(low.count()) + ")");
  }
  return field_error(join(path, low_key), "must not exceed " + join(path, high_key) + " ("
                                              + std::to_string(high.count()) + ")");
}

// -- sections
// --------------------------------------------------------------------------------------

result<void> read_limits(const Value& v, limits& out) {
  constexpr std::string_view path = "limits";
  if (auto r = check_object(
          v, path,
          {"max_body_bytes", "request_timeout_ms", "max_json_depth", "max_header_bytes",
           "client_read_timeout_ms", "client_idle_timeout_ms", "max_upstream_body_bytes",
           "max_header_count", "max_url_bytes", "max_messages", "max_connections",
           "max_inflight_per_user", "max_passthrough_body_bytes"});
      !r) {
    return r;
  }
  result<void> r = read_int(v, "max_body_bytes", path, out.max_body_bytes, 1, max_bytes);
  if (r) {
    r = read_ms(v, "request_timeout_ms", path, out.request_timeout);
  }
  if (r) {
    r = read_int(v, "max_json_depth", path, out.max_json_depth, 1, 10'000);
  }
  if (r) {
    r = read_int(v, "max_header_bytes", path, out.max_header_bytes, 1, std::int64_t{1} << 30);
  }
  if (r) {
    r = read_ms(v, "client_read_timeout_ms", path, out.client_read_timeout);
  }
  if (r) {
    r = read_ms(v, "client_idle_timeout_ms", path, out.client_idle_timeout);
  }
  if (r) {
    r = read_int(v, "max_upstream_body_bytes", path, out.max_upstream_body_bytes, 1, max_bytes);
  }
  if (r) {
    r = read_int(v, "max_header_count", path, out.max_header_count, 1, 10'000);
  }
  if (r) {
    r = read_int(v, "max_url_bytes", path, out.max_url_bytes, 16, std::int64_t{1} << 20);
  }
  if (r) {
    r = read_int(v, "max_messages", path, out.max_messages, 1, 1'000'000);
  }
  if (r) {
    r = read_int(v, "max_passthrough_body_bytes", path, out.max_passthrough_body_bytes, 1,
                 max_bytes);
  }
  if (r) {
    r = read_int(v, "max_connections", path, out.max_connections, 1, 1'000'000);
  }
  if (r) {
    r = read_int(v, "max_inflight_per_user", path, out.max_inflight_per_user, 0, 1'000'000);
  }
  return r;
}

result<void> read_rate_limits(const Value& v, rate_limit_config& out) {
  constexpr std::string_view path = "rate_limits";
  if (auto r =
          check_object(v, path, {"requests_per_minute", "tokens_per_minute", "signups_per_hour"});
      !r) {
    return r;
  }
  constexpr std::int64_t most = std::int64_t{1} << 40;
  result<void> r = read_int(v, "requests_per_minute", path, out.requests_per_minute, 0, most);
  if (r) {
    r = read_int(v, "tokens_per_minute", path, out.tokens_per_minute, 0, most);
  }
  if (r) {
    r = read_int(v, "signups_per_hour", path, out.signups_per_hour, 0, most);
  }
  return r;
}

result<void> read_tls(const Value& v, tls_config& out) {
  constexpr std::string_view path = "tls";
  if (auto r = check_object(v, path, {"cert_file", "key_file"}); !r) {
    return r;
  }
  result<void> r = read_string(v, "cert_file", path, out.cert_file);
  if (r) {
    r = read_string(v, "key_file", path, out.key_file);
  }
  return r;
}

result<void> read_server(const Value& v, server_config& out) {
  constexpr std::string_view path = "server";
  if (auto r = check_object(v, path, {"io_threads", "actor_threads", "scheduler"}); !r) {
    return r;
  }
  result<void> r = read_int(v, "io_threads", path, out.io_threads, 0, max_threads);
  if (r) {
    r = read_int(v, "actor_threads", path, out.actor_threads, 0, max_threads);
  }
  if (r) {
    static constexpr std::array<choice<scheduler_kind>, 2> scheduler_choices{{
        {"io", scheduler_kind::io},
        {"caf", scheduler_kind::caf},
    }};
    r = read_choice(v, "scheduler", path, out.scheduler, scheduler_choices,
                    R"(expected "io" or "caf")");
  }
  return r;
}

result<void> read_breaker(const Value& v, breaker_config& out) {
  constexpr std::string_view path = "breaker";
  if (auto r = check_object(v, path,
                            {"consecutive_failures", "window", "window_ms", "failure_ratio",
                             "min_requests", "cooldown_ms", "max_cooldown_ms", "probe_timeout_ms"});
      !r) {
    return r;
  }
  result<void> r =
      read_int(v, "consecutive_failures", path, out.consecutive_failures, 1, 1'000'000);
  if (r) {
    r = read_int(v, "window", path, out.window, 1, 100'000);
  }
  if (r) {
    r = read_ms(v, "window_ms", path, out.window_span);
  }
  if (r) {
    r = read_int(v, "min_requests", path, out.min_requests, 1, 100'000);
  }
  if (r) {
    r = read_ms(v, "cooldown_ms", path, out.cooldown);
  }
  if (r) {
    r = read_ms(v, "max_cooldown_ms", path, out.max_cooldown);
  }
  if (r) {
    r = read_ms(v, "probe_timeout_ms", path, out.probe_timeout);
  }
  if (!r) {
    return r;
  }
  if (const Value* ratio = find(v, "failure_ratio")) {
    if (!ratio->IsNumber() || !(ratio->GetDouble() > 0.0) || !(ratio->GetDouble() <= 1.0)) {
      return field_error("breaker.failure_ratio", "expected a number above 0 and at most 1");
    }
    out.failure_ratio = ratio->GetDouble();
  }
  if (out.min_requests > out.window) {  // the ratio rule could never fire
    if (find(v, "min_requests") != nullptr) {
      return field_error("breaker.min_requests",
                         "must not exceed breaker.window (" + std::to_string(out.window) + ")");
    }
    return field_error("breaker.window", "must be at least breaker.min_requests ("
                                             + std::to_string(out.min_requests) + ")");
  }
  return check_order(v, "breaker", "cooldown_ms", out.cooldown, "max_cooldown_ms",
                     out.max_cooldown);
}

result<void> read_cooldown(const Value& v, cooldown_config& out) {
  constexpr std::string_view path = "cooldown";
  if (auto r = check_object(v, path, {"default_ms", "max_ms"}); !r) {
    return r;
  }
  result<void> r = read_ms(v, "default_ms", path, out.default_cooldown);
  if (r) {
    r = read_ms(v, "max_ms", path, out.max_cooldown);
  }
  if (!r) {
    return r;
  }
  return check_order(v, "cooldown", "default_ms", out.default_cooldown, "max_ms", out.max_cooldown);
}

result<void> read_request_log(const Value& v, request_log_config& out) {
  constexpr std::string_view path = "request_log";
  if (auto r = check_object(v, path, {"max_age_days", "max_age_s", "max_records_per_user"}); !r) {
    return r;
  }
  result<void> r = read_int(v, "max_age_days", path, out.max_age_days, 1, 36'500);
  if (r) {
    r = read_int(v, "max_age_s", path, out.max_age_s, 1, std::int64_t{36'500} * 86'400);
  }
  if (r) {
    r = read_int(v, "max_records_per_user", path, out.max_records_per_user, 1,
                 std::numeric_limits<int>::max());
  }
  return r;
}

result<void> read_store(const Value& v, store_config& out) {
  constexpr std::string_view path = "store";
  if (auto r = check_object(v, path,
                            {"kind", "url", "resync_interval_ms", "timeout_ms",
                             "max_buffered_records", "probe_lease_ms", "lmdb_map_size_bytes"});
      !r) {
    return r;
  }
  static constexpr std::array<choice<store_kind>, 2> kinds{{
      {"lmdb", store_kind::lmdb},
      {"postgres", store_kind::postgres},
  }};
  result<void> r =
      read_choice(v, "kind", path, out.kind, kinds, R"(expected "lmdb" or "postgres")");
  if (r) {
    r = read_string(v, "url", path, out.url);
  }
  if (r) {
    r = read_ms(v, "resync_interval_ms", path, out.resync_interval);
  }
  if (r) {
    r = read_ms(v, "timeout_ms", path, out.timeout);
  }
  if (r) {
    r = read_ms(v, "probe_lease_ms", path, out.probe_lease);
  }
  if (r) {
    r = read_int(v, "max_buffered_records", path, out.max_buffered_records, 0, 100'000'000);
  }
  if (r) {
    r = read_int(v, "lmdb_map_size_bytes", path, out.lmdb_map_size, std::int64_t{1} << 20,
                 std::int64_t{1} << 46);
  }
  return r;
}

constexpr std::array<choice<log_level>, 4> log_level_choices{{
    {"debug", log_level::debug},
    {"info", log_level::info},
    {"warn", log_level::warn},
    {"error", log_level::error},
}};
constexpr std::string_view log_level_expected = R"(expected "debug", "info", "warn" or "error")";

result<void> read_log(const Value& v, log_config& out) {
  constexpr std::string_view path = "log";
  if (auto r = check_object(v, path, {"level", "format"}); !r) {
    return r;
  }
  static constexpr std::array<choice<log_format>, 2> format_choices{{
      {"json", log_format::json},
      {"text", log_format::text},
  }};
  result<void> r = read_choice(v, "level", path, out.level, log_level_choices, log_level_expected);
  if (r) {
    r = read_choice(v, "format", path, out.format, format_choices, R"(expected "json" or "text")");
  }
  return r;
}

result<void> read_timeouts(const Value& v, std::string_view path, timeouts& out) {
  if (auto r = check_object(v, path, {"connect", "first_byte", "total"}); !r) {
    return r;
  }
  result<void> r = read_ms(v, "connect", path, out.connect);
  if (r) {
    r = read_ms(v, "first_byte", path, out.first_byte);
  }
  if (r) {
    r = read_ms(v, "total", path, out.total);
  }
  return r;
}

result<void> read_models(const Value& v, std::string_view path, std::vector<std::string>& out) {
  if (!v.IsArray()) {
    return field_error(path, "expected an array of model ids");
  }
  out.clear();
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const std::string at = std::string{path} + "[" + std::to_string(i) + "]";
    const Value& m = v[i];
    if (!m.IsString() || m.GetStringLength() == 0) {
      return field_error(at, "expected a non-empty string");
    }
    std::string id{m.GetString(), m.GetStringLength()};
    if (std::find(out.begin(), out.end(), id) != out.end()) {
      return field_error(at, "duplicate model " + quoted(id));
    }
    out.push_back(std::move(id));
  }
  return {};
}

constexpr std::array<choice<protocol>, 2> protocol_choices{{
    {"openai", protocol::openai},
    {"anthropic", protocol::anthropic},
}};

constexpr std::array<choice<auth_style>, 5> auth_choices{{
    {"bearer", auth_style::bearer},
    {"x-api-key", auth_style::x_api_key},
    {"x_api_key", auth_style::x_api_key},
    {"api-subscription-key", auth_style::api_subscription_key},
    {"api_subscription_key", auth_style::api_subscription_key},
}};

/// Reads the fields of the provider entry `v` at `path` into `p`; with `inherited_only` (a
/// shipped entry under a user's one), only the `inherited_fields`.
result<void> read_provider_fields(const Value& v, std::string_view path, bool inherited_only,
                                  provider_config& p) {
  const auto wanted = [&](std::string_view key) {
    return !inherited_only
           || std::find(inherited_fields.begin(), inherited_fields.end(), key)
                  != inherited_fields.end();
  };
  result<void> r;
  if (wanted("protocol")) {
    r = read_choice(v, "protocol", path, p.proto, protocol_choices,
                    R"(expected "openai" or "anthropic")");
  }
  if (r && wanted("base_url")) {
    r = read_string(v, "base_url", path, p.base_url);
  }
  if (r && wanted("auth")) {
    r = read_choice(v, "auth", path, p.auth, auth_choices,
                    R"(expected "bearer", "x-api-key" or "api-subscription-key")");
  }
  if (r && wanted("timeouts_ms")) {
    if (const Value* t = find(v, "timeouts_ms")) {
      r = read_timeouts(*t, join(path, "timeouts_ms"), p.timeouts_ms);
    }
  }
  if (r && wanted("pool_size")) {
    r = read_int(v, "pool_size", path, p.pool_size, 1, max_pool_size, true);
  }
  if (r && wanted("models")) {
    if (const Value* m = find(v, "models")) {
      r = read_models(*m, join(path, "models"), p.models);
    }
  }
  if (r && wanted("reasoning_models")) {
    if (const Value* m = find(v, "reasoning_models")) {
      r = read_models(*m, join(path, "reasoning_models"), p.reasoning_models);
    }
  }
  if (r && wanted("anthropic_version")) {
    r = read_string(v, "anthropic_version", path, p.anthropic_version);
  }
  if (r && wanted("dialect")) {
    r = read_string(v, "dialect", path, p.dialect);
  }
  return r;
}

/// Reads the entry `v` of provider `name`. `shipped` (the shipped entry of that name, or null)
/// gives the defaults of the `inherited_fields`.
result<provider_config> read_provider(std::string_view name, const Value& v, const Value* shipped) {
  const std::string path = join("providers", name);
  if (!valid_provider_name(name)) {
    return field_error(path,
                       "expected a provider name of lowercase letters, digits, '.', '_' and '-' "
                       "(at most 64, starting with a letter or digit)");
  }
  if (auto r = check_object(v, path,
                            {"protocol", "base_url", "auth", "timeouts_ms", "pool_size", "models",
                             "anthropic_version", "dialect", "reasoning_models"});
      !r) {
    return std::move(r).error();
  }
  provider_config p;
  p.name = std::string{name};
  p.dialect = p.name;
  if (shipped != nullptr && shipped != &v) {
    if (auto r = read_provider_fields(*shipped, path, true, p); !r) {
      return std::move(r).error();
    }
  }
  if (auto r = read_provider_fields(v, path, false, p); !r) {
    return std::move(r).error();
  }
  if (find(v, "auth") == nullptr && (shipped == nullptr || find(*shipped, "auth") == nullptr)) {
    // A custom provider authenticates the way its protocol does by default.
    p.auth = p.proto == protocol::anthropic ? auth_style::x_api_key : auth_style::bearer;
  }
  return p;
}

/// Reads the `providers` object `v`; `shipped` is the shipped default's (see `read_provider`).
result<void> read_providers(const Value& v, const Value* shipped,
                            std::vector<provider_config>& out) {
  if (!v.IsObject()) {
    return field_error("providers", "expected an object of provider name -> settings");
  }
  if (v.ObjectEmpty()) {
    return field_error("providers", "expected at least one provider");
  }
  if (auto r = check_unique_keys(v, "providers"); !r) {
    return r;
  }
  out.clear();
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    auto p = read_provider(name_of(it->name), it->value, find_shipped(shipped, name_of(it->name)));
    if (!p) {
      return std::move(p).error();
    }
    out.push_back(std::move(*p));
  }
  // Two names must not share one IB_<NAME>_BASE_URL variable.
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (base_url_env_name(out[i].name) == base_url_env_name(out[j].name)) {
        return field_error(join("providers", out[i].name),
                           "shares the variable " + base_url_env_name(out[i].name)
                               + " with provider " + quoted(out[j].name) + "; rename one");
      }
    }
  }
  return {};
}

bool valid_tier_name(std::string_view n) {
  return !n.empty() && std::none_of(n.begin(), n.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0
           || std::iscntrl(static_cast<unsigned char>(c)) != 0;
  });
}

/// Reads `tiers`. With `lenient` (the shipped default tiers over a user's own providers), entries
/// naming a provider the config does not define are dropped, and then-empty tiers with them,
/// instead of failing.
result<void> read_tiers(const Value& v, const std::vector<provider_config>& providers, bool lenient,
                        std::vector<tier>& out, std::string_view section = "tiers") {
  if (!v.IsObject()) {
    return field_error(std::string(section),
                       "expected an object of name -> [{provider, model}, ...]");
  }
  if (auto r = check_unique_keys(v, section); !r) {
    return r;
  }
  const auto is_provider = [&](std::string_view name) {
    return std::any_of(providers.begin(), providers.end(),
                       [name](const provider_config& p) { return p.name == name; });
  };
  out.clear();
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const auto name = name_of(it->name);
    const std::string path = join(section, name);
    if (!valid_tier_name(name)) {
      return field_error(name.empty() ? std::string(section) + ".\"\"" : path,
                         "expected a non-empty tier name without spaces");
    }
    if (const auto slash = name.find('/');
        slash != std::string_view::npos && is_provider(name.substr(0, slash))) {
      return field_error(path, "a tier name must not start with a provider name and '/' ("
                                   + quoted(name.substr(0, slash))
                                   + "), or it would hide that provider's direct routes");
    }
    const Value& list = it->value;
    if (!list.IsArray() || list.Empty()) {
      return field_error(path, "expected a non-empty array of {\"provider\", \"model\"}");
    }
    tier t{std::string{name}, {}};
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
      const std::string at = path + "[" + std::to_string(i) + "]";
      const Value& e = list[i];
      if (auto r = check_object(e, at, {"provider", "model"}); !r) {
        return r;
      }
      tier_entry entry;
      result<void> r = read_string(e, "provider", at, entry.provider);
      if (r) {
        r = read_string(e, "model", at, entry.model);
      }
      if (!r) {
        return r;
      }
      if (entry.provider.empty()) {
        return field_error(join(at, "provider"), "required");
      }
      if (entry.model.empty()) {
        return field_error(join(at, "model"), "required");
      }
      if (!is_provider(entry.provider)) {
        if (lenient) {
          continue;
        }
        return field_error(join(at, "provider"), "unknown provider " + quoted(entry.provider));
      }
      t.entries.push_back(std::move(entry));
    }
    if (!t.entries.empty()) {
      out.push_back(std::move(t));
    }
  }
  return {};
}

result<rapidjson::Document> parse_json(std::string_view text, std::string_view what) {
  rapidjson::Document doc;
  constexpr unsigned flags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag
                             | rapidjson::kParseIterativeFlag
                             | rapidjson::kParseValidateEncodingFlag;
  doc.Parse<flags>(text.data(), text.size());
  if (doc.HasParseError()) {
    const std::size_t offset = std::min(doc.GetErrorOffset(), text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return error{errc::invalid_request, std::string{what} + ": invalid JSON at line "
                                            + std::to_string(line) + ", column "
                                            + std::to_string(column) + ": "
                                            + rapidjson::GetParseError_En(doc.GetParseError())};
  }
  if (!doc.IsObject()) {
    return error{errc::invalid_request, std::string{what} + ": expected a JSON object"};
  }
  return doc;
}

/// The value of `name` in `env`, trimmed; empty counts as unset.
std::string_view env_value(const env_map& env, std::string_view name) {
  const auto it = env.find(name);
  return it == env.end() ? std::string_view{} : trim(it->second, " \t\r\n\v\f");
}

result<void> apply_listen(std::string_view text, std::string_view field, server_config& out) {
  auto hp = parse_host_port(text);
  if (!hp) {
    return field_error(field, hp.error().message);
  }
  out.listen = std::string{text};
  out.host = std::move(hp->host);
  out.port = hp->port;
  return {};
}

}  // namespace

result<config> load(std::string_view json_text, const env_map& env) {
  auto user = parse_json(json_text, "config");
  if (!user) {
    return std::move(user).error();
  }
  const Value& root = *user;
  if (auto r = check_object(root, "",
                            {"listen", "data_dir", "signup", "limits", "server", "providers",
                             "tiers", "breaker", "cooldown", "request_log", "store", "rate_limits",
                             "tls", "log", "metrics", "embedding_models"});
      !r) {
    return std::move(r).error();
  }

  config cfg;

  // Scalars and sections: a field absent here keeps the default of config.hpp.
  result<void> r;
  if (const Value* v = find(root, "listen")) {
    if (!v->IsString()) {
      return field_error("listen", "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)");
    }
    r = apply_listen({v->GetString(), v->GetStringLength()}, "listen", cfg.server);
  }
  if (r) {
    r = read_string(root, "data_dir", "", cfg.data_dir);
  }
  if (r) {
    static constexpr std::array<choice<signup_mode>, 2> signup_choices{{
        {"open", signup_mode::open},
        {"admin", signup_mode::admin},
    }};
    r = read_choice(root, "signup", "", cfg.signup, signup_choices,
                    R"(expected "open" or "admin")");
  }
  const auto section = [&](std::string_view key, auto&& reader) {
    if (r) {
      if (const Value* v = find(root, key)) {
        r = reader(*v);
      }
    }
  };
  section("limits", [&](const Value& v) { return read_limits(v, cfg.limits_); });
  section("server", [&](const Value& v) { return read_server(v, cfg.server); });
  section("breaker", [&](const Value& v) { return read_breaker(v, cfg.breaker); });
  section("cooldown", [&](const Value& v) { return read_cooldown(v, cfg.cooldown); });
  section("request_log", [&](const Value& v) { return read_request_log(v, cfg.request_log); });
  section("store", [&](const Value& v) { return read_store(v, cfg.store); });
  section("rate_limits", [&](const Value& v) { return read_rate_limits(v, cfg.rate_limits); });
  section("tls", [&](const Value& v) { return read_tls(v, cfg.tls); });
  section("log", [&](const Value& v) { return read_log(v, cfg.log); });
  section("metrics", [&](const Value& v) -> result<void> {
    if (auto c = check_object(v, "metrics", {"public"}); !c) {
      return c;
    }
    return read_bool(v, "public", "metrics", cfg.metrics_public);
  });
  if (!r) {
    return std::move(r).error();
  }

  // `providers` and `tiers` are maps that the user's file replaces as a whole (not merged
  // name by name with the shipped default): a config that lists providers means exactly those.
  // Whichever of the two is absent comes from the shipped default. When only `providers` is
  // given, the default tiers keep just the entries whose provider the config still defines.
  const Value* user_providers = find(root, "providers");
  const Value* user_tiers = find(root, "tiers");
  // The shipped default is always read: its `providers` are the providers the gateway knows.
  auto shipped = parse_json(default_json(), "built-in default config");
  if (!shipped) {
    return std::move(shipped).error();
  }
  const Value* known = shipped_providers(*shipped);
  const Value* providers = user_providers != nullptr ? user_providers : known;
  const Value* tiers = user_tiers != nullptr ? user_tiers : find(*shipped, "tiers");
  if (providers != nullptr) {
    r = read_providers(*providers, known, cfg.providers);
  }
  if (r && tiers != nullptr) {
    const bool lenient = user_tiers == nullptr && user_providers != nullptr;
    r = read_tiers(*tiers, cfg.providers, lenient, cfg.tiers);
  }
  // `embedding_models`: name -> entries that serve the same model (fallback only among them).
  const Value* user_embeddings = find(root, "embedding_models");
  const Value* embeddings =
      user_embeddings != nullptr ? user_embeddings : find(*shipped, "embedding_models");
  if (r && embeddings != nullptr) {
    r = read_tiers(*embeddings, cfg.providers, user_embeddings == nullptr, cfg.embedding_models,
                   "embedding_models");
  }
  if (!r) {
    return std::move(r).error();
  }

  // Environment overrides. An empty variable counts as unset.
  if (const auto v = env_value(env, "IB_LISTEN"); !v.empty()) {
    if (auto l = apply_listen(v, "IB_LISTEN", cfg.server); !l) {
      return std::move(l).error();
    }
  }
  if (const auto v = env_value(env, "IB_DATA_DIR"); !v.empty()) {
    cfg.data_dir = std::string{v};
  }
  if (const auto v = env_value(env, "IB_MASTER_KEY"); !v.empty()) {
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto key = trim(rest.substr(0, comma), " \t\r\n\v\f");
      if (!key.empty()) {
        cfg.master_keys.emplace_back(key);
      }
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  if (const auto v = env_value(env, "IB_DATABASE_URL"); !v.empty()) {
    cfg.store.kind = store_kind::postgres;
    cfg.store.url = std::string(v);
  }
  if (cfg.store.kind == store_kind::postgres && cfg.store.url.empty()) {
    return field_error("store.url",
                       R"(required when "kind" is "postgres" (or set IB_DATABASE_URL))");
  }
  if (cfg.store.kind == store_kind::postgres && cfg.master_keys.empty()) {
    // Every node must decrypt every node's writes: a key generated per node would not.
    return field_error("IB_MASTER_KEY",
                       "required with a PostgreSQL store (every node needs the "
                       "same master key; it is never stored in the database)");
  }
  if (const auto v = env_value(env, "IB_TLS_CERT_FILE"); !v.empty()) {
    cfg.tls.cert_file = std::string(v);
  }
  if (const auto v = env_value(env, "IB_TLS_KEY_FILE"); !v.empty()) {
    cfg.tls.key_file = std::string(v);
  }
  if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
    return field_error("tls",
                       "give both cert_file and key_file (or IB_TLS_CERT_FILE and "
                       "IB_TLS_KEY_FILE), or neither");
  }
  if (const auto v = env_value(env, "IB_SIGNUPS_PER_HOUR"); !v.empty()) {
    std::int64_t n = -1;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || p != v.data() + v.size() || n < 0) {
      return field_error("IB_SIGNUPS_PER_HOUR", "expected a whole number >= 0 (0: no limit)");
    }
    cfg.rate_limits.signups_per_hour = n;
  }
  if (const auto v = env_value(env, "IB_EXTRA_CA_FILE"); !v.empty()) {
    cfg.extra_ca_file = std::string(v);
  }
  if (const auto v = env_value(env, "IB_ADMIN_TOKEN"); !v.empty()) {
    cfg.admin_token = std::string{v};
  }
  if (const auto v = env_value(env, "IB_LOG_LEVEL"); !v.empty()) {
    bool known_level = false;
    for (const auto& c : log_level_choices) {
      if (c.text == v) {
        cfg.log.level = c.value;
        known_level = true;
      }
    }
    if (!known_level) {
      return field_error("IB_LOG_LEVEL", log_level_expected);
    }
  }
  for (auto& p : cfg.providers) {
    const std::string var = base_url_env_name(p.name);
    std::string field = join(join("providers", p.name), "base_url");
    if (const auto v = env_value(env, var); !v.empty()) {
      p.base_url = std::string{v};
      field = var;
    }
    if (p.base_url.empty()) {
      return field_error(field, "required for a provider that is not one of " + shipped_names(known)
                                    + " (or set " + var + ")");
    }
    auto u = parse_url(p.base_url);
    if (!u) {
      return field_error(field, u.error().message);
    }
    p.endpoint = std::move(*u);
  }

  if (cfg.signup == signup_mode::admin && cfg.admin_token.empty()) {
    return field_error("signup", R"("admin" requires the IB_ADMIN_TOKEN environment variable)");
  }
  return cfg;
}

result<config> load_default(const env_map& env) {
  return load(default_json(), env);
}

env_map process_env() {
  env_map out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry{*e};
    if (!entry.starts_with("IB_")) {
      continue;
    }
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    out.insert_or_assign(std::string{entry.substr(0, eq)}, std::string{entry.substr(eq + 1)});
  }
  return out;
}

std::string describe(const config& cfg) {
  std::string out;
  const auto line = [&out](std::string_view label, std::string_view value) {
    out += label;
    out += value;
    out += '\n';
  };
  line("listen:      ", cfg.server.listen);
  line("data dir:    ", cfg.data_dir);
  line("store:       ", cfg.store.kind == store_kind::postgres
                            ? "postgres (IB_DATABASE_URL or store.url)"
                            : "lmdb in the data dir");
  line("signup:      ", cfg.signup == signup_mode::open ? "open" : "admin (IB_ADMIN_TOKEN set)");
  line("master key:  ", cfg.master_keys.empty()
                            ? "master.key in the data dir (created on first start)"
                            : "IB_MASTER_KEY (" + std::to_string(cfg.master_keys.size())
                                  + (cfg.master_keys.size() == 1 ? " key)" : " keys)"));
  std::string log_line{"error"};
  for (const auto& c : log_level_choices) {
    if (c.value == cfg.log.level) {
      log_line = c.text;
    }
  }
  log_line += cfg.log.format == log_format::json ? ", json on stdout" : ", text on stdout";
  line("log:         ", log_line);
  line("metrics:     ", cfg.metrics_public ? "public" : "loopback peers only");
  out += "providers (" + std::to_string(cfg.providers.size()) + "):\n";
  for (const auto& p : cfg.providers) {
    out += "  " + p.name + ": " + std::string{to_string(p.proto)} + ", " + p.base_url + ", auth "
           + std::string{to_string(p.auth)} + ", models: ";
    if (p.models.empty()) {
      out += "(none listed)";
    }
    for (std::size_t i = 0; i < p.models.size(); ++i) {
      out += (i == 0 ? "" : ", ") + p.models[i];
    }
    out += '\n';
  }
  out += "tiers (" + std::to_string(cfg.tiers.size()) + "):\n";
  for (const auto& t : cfg.tiers) {
    out += "  " + t.name + ":";
    for (std::size_t i = 0; i < t.entries.size(); ++i) {
      out += (i == 0 ? " " : " -> ") + t.entries[i].provider + "/" + t.entries[i].model;
    }
    out += '\n';
  }
  return out;
}

}  // namespace ib::config
