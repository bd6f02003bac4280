#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/breaker.hpp"
#include "core/result.hpp"

namespace ib::config {

using std::chrono::milliseconds;

/// Wire protocol of a provider.
enum class protocol : std::uint8_t { openai, anthropic };

/// How the provider key is sent upstream.
enum class auth_style : std::uint8_t {
  bearer,                ///< `Authorization: Bearer <key>` (OpenAI, Groq, DeepSeek, Together)
  x_api_key,             ///< `x-api-key: <key>` (Anthropic)
  api_subscription_key,  ///< `api-subscription-key: <key>` (Sarvam)
};

/// The config spelling of `p`: "openai" or "anthropic" ("unknown" for an out-of-range value).
std::string_view to_string(protocol p) noexcept;
/// The config spelling of `a`: "bearer", "x-api-key" or "api-subscription-key" ("unknown" for an
/// out-of-range value).
std::string_view to_string(auth_style a) noexcept;

/// The deadlines of one upstream call (`timeouts_ms` of a provider), in milliseconds.
struct timeouts {
  milliseconds connect{3'000};
  milliseconds first_byte{30'000};  ///< until the first payload byte; also the stream idle timeout
  milliseconds total{120'000};      ///< the whole call, streamed body included
};

/// A parsed `base_url`: `https://api.openai.com/v1` -> {true, "api.openai.com", 443, "/v1"}.
struct url {
  bool tls = true;
  std::string host;  ///< lower-cased; an IPv6 literal without its brackets
  std::uint16_t port = 443;
  std::string path;  ///< without a trailing slash; may be empty
};

/// Parses an absolute http(s) URL (no query, no fragment, no userinfo).
result<url> parse_url(std::string_view text);

/// A parsed `listen` address.
struct host_port {
  std::string host;  ///< a host name or IPv4 literal, or an IPv6 literal without its brackets
  std::uint16_t port = 0;
};

/// Parses `HOST:PORT` or `[IPv6]:PORT` (port 0..65535; 0 = ephemeral). The error message says
/// what was expected; the caller prefixes the field name.
result<host_port> parse_host_port(std::string_view text);

/// One upstream provider (`providers.<name>`). A shipped provider (an entry of
/// config/default.json) inherits `proto`, `base_url`, `auth`, `anthropic_version`, `dialect` and
/// `reasoning_models` from its shipped entry; any other name needs a `base_url`.
struct provider_config {
  std::string name;  ///< the key under `providers`: a shipped name or any other
  protocol proto = protocol::openai;
  std::string base_url;
  url endpoint;  ///< `base_url`, parsed
  auth_style auth = auth_style::bearer;
  timeouts timeouts_ms;
  int pool_size = 64;                            ///< idle keep-alive connections kept per provider
  std::vector<std::string> models;               ///< listed by GET /v1/models as `provider/model`
  std::string anthropic_version = "2023-06-01";  ///< sent as `anthropic-version` (anthropic only)
  std::string dialect;  ///< quirks table to use (providers.md §3); defaults to `name`
  /// Model id prefixes of reasoning models that refuse `temperature` and `top_p` unless the
  /// request sets `reasoning_effort: "none"`; for those models both are dropped from such
  /// requests. Shipped for `openai` in config/default.json (gpt-6, gpt-5, o1, o3, o4);
  /// `"reasoning_models": [...]` replaces the list.
  std::vector<std::string> reasoning_models;
};

/// One step of a tier: a configured provider and the model id sent to it.
struct tier_entry {
  std::string provider;  ///< a name under `providers`
  std::string model;     ///< the upstream model id
};

/// A named, ordered fallback list (design §4), tried first to last.
struct tier {
  std::string name;                 ///< e.g. `ib/balanced`
  std::vector<tier_entry> entries;  ///< never empty after `load`
};

/// Request limits (`limits`): sizes in bytes, times in milliseconds.
struct limits {
  std::size_t max_body_bytes = 4 * 1024 * 1024;  ///< a larger request body is refused with 413
  milliseconds request_timeout{120'000};         ///< the overall deadline of a chat request
  int max_json_depth = 64;                       ///< deeper request JSON is refused with 400
  std::size_t max_header_bytes = 16 * 1024;      ///< request line and headers together
  milliseconds client_read_timeout{30'000};      ///< reading one request's headers and body
  milliseconds client_idle_timeout{75'000};      ///< an idle keep-alive connection
  std::size_t max_upstream_body_bytes = 32 * 1024 * 1024;  ///< non-streamed upstream response
  std::size_t max_header_count = 100;    ///< header fields in one request; more is a 400
  std::size_t max_url_bytes = 8 * 1024;  ///< the request target (path and query); longer is a 414
  std::size_t max_messages = 2048;       ///< entries of a chat request's `messages`; more is a 400
  /// Request bodies forwarded to OpenAI's other endpoints (audio, files, ...), streamed, never
  /// held whole; more is a 413. 25 MiB: OpenAI's own audio upload limit.
  std::size_t max_passthrough_body_bytes = 25 * 1024 * 1024;
  /// Client connections open at once; one more is answered 503 and closed at once.
  std::size_t max_connections = 4096;
  /// Chat requests of one user in flight at once; one more is answered 429 (0: no limit).
  std::size_t max_inflight_per_user = 1024;
};

/// Abuse control (`rate_limits`): token buckets per user, refilled continuously; 0 turns a
/// limit off. Over a limit: 429 with `Retry-After` and OpenAI's `x-ratelimit-*` headers.
struct rate_limit_config {
  std::int64_t requests_per_minute = 0;  ///< chat requests per user
  std::int64_t tokens_per_minute = 0;    ///< prompt + completion tokens per user (charged after)
  /// Sign-ups per client address per hour while `signup` is open (`IB_SIGNUPS_PER_HOUR`).
  std::int64_t signups_per_hour = 30;
};

/// The listener's TLS (`tls`; `IB_TLS_CERT_FILE`, `IB_TLS_KEY_FILE`): both PEM files given, or
/// neither (plain HTTP). Re-read on SIGHUP.
struct tls_config {
  std::string cert_file;  ///< certificate chain, PEM
  std::string key_file;   ///< private key, PEM
  bool enabled() const noexcept { return !cert_file.empty(); }
};

/// Retention of the request log (`request_log`): older or surplus records are dropped when the
/// next batch is written.
struct request_log_config {
  int max_age_days = 30;              ///< records older than this many days go
  int max_records_per_user = 10'000;  ///< beyond this, a user's oldest records go
  /// `max_age_s` in the config: when > 0, the maximum age in seconds, replacing `max_age_days`
  /// (short retention, and tests that cannot wait a day).
  std::int64_t max_age_s = 0;

  /// The maximum age in seconds: `max_age_s` when set, else `max_age_days` days.
  std::int64_t max_age_seconds() const noexcept {
    return max_age_s > 0 ? max_age_s : static_cast<std::int64_t>(max_age_days) * 86'400;
  }
};

/// Severity of a log line (`log.level`): a line below the configured level is not written.
enum class log_level : std::uint8_t { debug, info, warn, error };

/// How log lines are written (`log.format`).
enum class log_format : std::uint8_t {
  json,  ///< one JSON object per line: `{"time","level","msg",...fields}`
  text,  ///< `<time> <msg> key=value ...`, for a terminal
};

/// The log on stdout (`log`): access lines are level info. `IB_LOG_LEVEL` overrides `level`.
struct log_config {
  log_level level = log_level::info;
  log_format format = log_format::json;
};

/// Where scheduled actors run (`server.scheduler`).
enum class scheduler_kind : std::uint8_t {
  io,   ///< on the I/O threads (the default)
  caf,  ///< on CAF's own work-sharing worker threads
};

/// The listener and threads (`listen`, `server`).
struct server_config {
  std::string listen = "127.0.0.1:8080";
  std::string host = "127.0.0.1";  ///< parsed from `listen`
  std::uint16_t port = 8080;       ///< parsed from `listen`; 0 = ephemeral
  int io_threads = 0;              ///< 0: chosen from the core count
  int actor_threads = 0;           ///< scheduler "caf" only; 0: chosen from the core count
  /// Where scheduled actors run: "io" (default: on the I/O threads, no thread hops per request)
  /// or "caf" (CAF's own work-sharing worker threads).
  scheduler_kind scheduler = scheduler_kind::io;
};

/// Where the durable state lives (`store`, design §6 and §10).
enum class store_kind : std::uint8_t {
  lmdb,      ///< LMDB in the data dir: one node (the default)
  postgres,  ///< PostgreSQL at `url`: any number of nodes share it
};

/// The store (`store`; `IB_DATABASE_URL` selects PostgreSQL and sets `url`).
struct store_config {
  store_kind kind = store_kind::lmdb;
  std::string
      url;  ///< libpq connection URI (postgres only); never printed (it may hold a password)
  milliseconds resync_interval{
      30'000};                  ///< full reload of keys and breakers, healing missed NOTIFYs
  milliseconds timeout{3'000};  ///< bound of one database call (a write's 503 comes by then)
  /// The most the LMDB data file may grow to, in bytes (a write beyond it is a 507).
  std::size_t lmdb_map_size = std::size_t{1} << 32;
  /// Request records waiting in memory to be written (a store slower than the traffic, or
  /// PostgreSQL away); beyond it records are dropped (and counted in
  /// `inferbridge_request_records_dropped_total`). Applies to LMDB too.
  std::size_t max_buffered_records = 100'000;
  milliseconds probe_lease{2'000};  ///< a won half-open probe lease, until the probe goes
};

/// Who may create users (`signup`).
enum class signup_mode : std::uint8_t {
  open,   ///< anyone: POST /v1/users needs no credentials
  admin,  ///< only a caller presenting `Bearer <IB_ADMIN_TOKEN>`
};

/// The whole resolved configuration: plain data, validated once by `load`.
struct config {
  server_config server;
  std::string data_dir = "./data";
  signup_mode signup = signup_mode::open;
  std::string admin_token;  ///< from IB_ADMIN_TOKEN; required when signup is admin
  /// From IB_EXTRA_CA_FILE: a PEM bundle trusted for upstream TLS besides the system store
  /// (a private proxy in front of a provider, or a test's self-signed upstream).
  std::string extra_ca_file;
  std::vector<std::string> master_keys;  ///< from IB_MASTER_KEY (comma-separated); may be empty
  limits limits_;
  std::vector<provider_config> providers;  ///< in config order
  std::vector<tier> tiers;                 ///< in config order
  /// Embedding model names (`embedding_models`): each lists entries that serve the *same*
  /// model, tried in order (vectors of different models are not comparable: no tier fallback).
  std::vector<tier> embedding_models;
  breaker_config breaker;
  cooldown_config cooldown;
  request_log_config request_log;
  store_config store;
  rate_limit_config rate_limits;
  tls_config tls;
  log_config log;
  bool metrics_public = false;  ///< serve /metrics to non-loopback peers

  /// The provider called `name`, or null. A linear scan (the list is short).
  const provider_config* find_provider(std::string_view name) const noexcept;
  /// The tier called `name`, or null. A linear scan (the list is short).
  const tier* find_tier(std::string_view name) const noexcept;
  /// The embedding model named `name`, or null.
  const tier* find_embedding_model(std::string_view name) const noexcept;
};

/// Environment variables as a map, so that `load` never reads the process environment.
using env_map = std::map<std::string, std::string, std::less<>>;

/// The shipped default configuration (config/default.json, embedded at build time): JSON with
/// comments. Its `providers` are the providers the gateway knows by name.
std::string_view default_json();

}  // namespace ib::config
