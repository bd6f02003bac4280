#include "app/api.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <random>

#include <caf/all.hpp>
#include <openssl/crypto.h>
#include <rapidjson/document.h>

#include "actors/asio_scheduler.hpp"
#include "actors/messages.hpp"
#include "app/passthrough.hpp"
#include "app/routes.hpp"
#include "config/route.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/request_record.hpp"
#include "core/text.hpp"
#include "metrics/registry.hpp"
#include "providers/anthropic_inbound.hpp"
#include "providers/embeddings.hpp"
#include "providers/front.hpp"
#include "providers/json.hpp"
#include "providers/responses.hpp"
#include "storage/secrets.hpp"

namespace ib::app {

namespace {

using steady = std::chrono::steady_clock;
using responder_ptr = std::shared_ptr<http::responder>;

// -- small helpers --------------------------------------------------------------------------------

http::response json_response(int status, std::string body) {
  http::response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

/// `err` in the error shape of `which` (OpenAI's envelope, or Anthropic's for its API).
void send_api_error(http::responder& res, providers::client_api which, const error& err,
                    http::header_list extra = {}) {
  auto r = json_response(http_status(err.code), providers::front_error_body(which, err));
  r.headers = std::move(extra);
  res.send(std::move(r));
}

/// `err` in the OpenAI envelope (every endpoint but the Anthropic API's).
void send_error(http::responder& res, const error& err, http::header_list extra = {}) {
  send_api_error(res, providers::client_api::chat_completions, err, std::move(extra));
}

/// A unique request id: `req_` + 16 hex of per-process randomness + 8 hex of a counter.
std::string new_request_id() {
  static const std::uint64_t prefix = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  static std::atomic<std::uint32_t> counter{0};
  auto n = counter.fetch_add(1, std::memory_order_relaxed);
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "req_";
  id.resize(4 + 24);
  for (int i = 0; i < 16; ++i) {
    id[4 + i] = hex[(prefix >> (60 - 4 * i)) & 0xf];
  }
  for (int i = 0; i < 8; ++i) {
    id[20 + i] = hex[(n >> (28 - 4 * i)) & 0xf];
  }
  return id;
}

std::string_view bearer_token(std::string_view header) {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size() || !istarts_with(header, scheme)) {
    return {};
  }
  auto token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  return token;
}

/// `x-inferbridge-overhead-ms` of a chat request the gateway answers itself: all of its time so
/// far is the gateway's.
http::header_list own_answer_headers(steady::time_point start) {
  http::header_list h;
  h.emplace_back(
      "x-inferbridge-overhead-ms",
      overhead_ms_text(
          std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start).count()));
  return h;
}

/// The user of the request's gateway key, or a 401 sent and null returned. `chat_start`: the
/// request is a routed request (chat, responses, messages, ...) that started then, and its 401
/// carries `x-inferbridge-overhead-ms`. `which`: the API called; the Anthropic API also takes
/// the key as `x-api-key`, and answers in its own error shape.
std::shared_ptr<const actors::user_entry> authenticate(
    const api_context& api, const http::request& req, http::responder& res,
    std::optional<steady::time_point> chat_start = std::nullopt,
    providers::client_api which = providers::client_api::chat_completions) {
  auto extra = [&] { return chat_start ? own_answer_headers(*chat_start) : http::header_list{}; };
  const bool anthropic =
      which == providers::client_api::messages || which == providers::client_api::count_tokens;
  auto token = bearer_token(req.headers[authorization_header]);
  if (token.empty() && anthropic) {
    token = trim(req.headers[api_key_header]);
  }
  if (token.empty()) {
    send_api_error(res, which,
                   error{errc::unauthorized,
                         anthropic ? "You didn't provide an API key. Send your InferBridge key "
                                     "(ib_...) as 'x-api-key: ib_...' or in the Authorization "
                                     "header as 'Bearer ib_...'."
                                   : "You didn't provide an API key. Send your InferBridge key "
                                     "(ib_...) in the Authorization header as 'Bearer ib_...'.",
                         {},
                         "invalid_api_key"},
                   extra());
    return nullptr;
  }
  auto user = api.keys->authenticate(token);
  if (!user) {
    send_api_error(res, which,
                   error{errc::unauthorized, "Incorrect API key provided.", {}, "invalid_api_key"},
                   extra());
  }
  return user;
}

/// Parses a small JSON object body (iterative, depth-bounded).
bool parse_object(const api_context& api, const std::string& body, rapidjson::Document& doc,
                  http::responder& res) {
  if (providers::exceeds_depth(body, api.cfg->limits_.max_json_depth)) {
    send_error(res, error{errc::invalid_request, "JSON nesting is too deep"});
    return false;
  }
  doc.Parse<providers::json::parse_flags>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    send_error(res, error{errc::invalid_request,
                          "We could not parse the JSON body of your request: expected a JSON "
                          "object."});
    return false;
  }
  return true;
}

bool is_safe_secret(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

/// A provider key as the API shows it: `{"provider","key_hint","created"}` (never the key).
void write_key(json_writer& w, std::string_view provider, std::string_view hint,
               std::int64_t created) {
  w.start_object();
  w.key("provider").string(provider);
  w.key("key_hint").string(hint);
  w.key("created").integer(created);
  w.end_object();
}

std::string key_json(std::string_view provider, std::string_view hint, std::int64_t created) {
  std::string out;
  json_writer w(out);
  write_key(w, provider, hint, created);
  return out;
}

// -- endpoints ------------------------------------------------------------------------------------

/// What a client is told when the key actor or the metrics actor died with its command: the
/// command was (all but certainly) not applied and its supervisor has already restarted the
/// actor, so this is a 503 with `Retry-After` (which the OpenAI SDKs honour) rather than a 500.
constexpr std::string_view key_service_restarted =
    "The key service restarted before answering; retry the request.";
constexpr std::string_view request_log_restarted =
    "The request log restarted before answering; retry the request.";

/// How long an admin command may wait for its actor (an LMDB commit syncs to disk); past it the
/// command counts as dropped.
constexpr auto command_timeout = std::chrono::seconds(30);

/// Sends a failed command's error; a 503 (see above) carries `Retry-After: 1`.
void send_command_error(http::responder& res, const error& err, http::header_list extra = {}) {
  if (err.code == errc::unavailable) {
    extra.emplace_back("retry-after", "1");
  }
  send_error(res, err, std::move(extra));
}

/// The body of a short-lived actor that asks `to` for `(xs...)` and hands the answer to
/// `on_value` or the error to `on_error`, both on this actor's thread; it ends after either.
template <class Handle, class OnValue, class OnError, class... Ts>
void asker(caf::event_based_actor* self, Handle to, OnValue on_value, OnError on_error, Ts... xs) {
  self->request(to, command_timeout, std::move(xs)...)
      .then(std::move(on_value), std::move(on_error));
}

/// Asks `to` for `(xs...)` from an I/O thread without blocking it: through a short-lived
/// event-based actor (never a scoped actor on an I/O thread). Exactly one of the handlers runs,
/// on a CAF thread; each captures the command's responder.
template <class Handle, class OnValue, class OnError, class... Ts>
void ask(const api_context& api, const Handle& to, OnValue on_value, OnError on_error, Ts... xs) {
  // Arguments, not captures: 0.17's spawn of a function without arguments dereferences a null
  // argument tuple.
  api.sys->spawn(asker<Handle, OnValue, OnError, Ts...>, to, std::move(on_value),
                 std::move(on_error), std::move(xs)...);
  actors::release_thread_logger();
}

void create_user(const std::shared_ptr<const api_context>& api, http::request& req,
                 http::responder& res) {
  if (api->cfg->signup == config::signup_mode::admin) {
    auto token = bearer_token(req.headers[authorization_header]);
    const auto& admin = api->cfg->admin_token;
    // Constant time, length included: the digests are compared, never the texts (a length
    // check first would tell a prober the admin token's length).
    const auto given = storage::sha256(token);
    const auto expected = storage::sha256(admin);
    if (admin.empty() || CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0) {
      return send_error(res, error{errc::unauthorized,
                                   "Sign-up is restricted: send the admin token as 'Bearer "
                                   "<IB_ADMIN_TOKEN>'.",
                                   {},
                                   "invalid_admin_token"});
    }
  }
  rapidjson::Document doc;
  if (!parse_object(*api, req.body, doc, res)) {
    return;
  }
  auto email = providers::json::get_string(doc, "email");
  if (!email || !is_plausible_email(*email)) {
    return send_error(res, error{errc::invalid_request, "'email' must be a valid email address",
                                 "email", "invalid_email"});
  }
  if (const auto per_hour = api->cfg->rate_limits.signups_per_hour;
      api->cfg->signup == config::signup_mode::open && per_hour > 0) {
    // Counted per TCP peer address, for every well-formed attempt (a taken email included, so
    // that probing for accounts is throttled too).
    auto [ok, wait] = api->signups->take(req.peer, per_hour, steady::now());
    if (!ok) {
      return send_error(
          res,
          error{errc::rate_limited,
                "Too many sign-ups from your address: at most " + std::to_string(per_hour)
                    + " per hour. Please try again in " + format_reset(wait) + ".",
                {},
                "too_many_signups"},
          {{"retry-after", std::to_string(retry_after_seconds(wait))}});
    }
  }
  auto shared = std::make_shared<http::responder>(std::move(res));
  ask(
      *api, api->key_actor,
      [shared](actors::created_user& u) {
        std::string body;
        {
          json_writer w(body);
          w.start_object();
          w.key("id").string(u.id);
          w.key("email").string(u.email);
          w.key("api_key").string(u.api_key);
          w.key("created").integer(u.created);
          w.end_object();
        }
        shared->send(json_response(201, std::move(body)));
      },
      [shared](caf::error& e) {
        auto err = actors::command_error(e, key_service_restarted);
        http::header_list extra;
        if (err.code == errc::conflict) {
          err.param = "email";
          err.detail_code = "email_taken";
          extra.emplace_back("x-should-retry", "false");
        }
        send_command_error(*shared, err, std::move(extra));
      },
      actors::mkuser_atom::value, std::string(*email));
}

void create_key(const std::shared_ptr<const api_context>& api, http::request& req,
                http::responder& res) {
  auto user = authenticate(*api, req, res);
  if (!user) {
    return;
  }
  rapidjson::Document doc;
  if (!parse_object(*api, req.body, doc, res)) {
    return;
  }
  auto provider = providers::json::get_string(doc, "provider");
  if (!provider || api->cfg->find_provider(*provider) == nullptr) {
    return send_error(
        res, error{errc::invalid_request, "'provider' must be one of: " + api->provider_list,
                   "provider", "unknown_provider"});
  }
  auto key = providers::json::get_string(doc, "api_key");
  if (!key || key->empty() || key->size() > 4096 || !is_safe_secret(*key)) {
    return send_error(res, error{errc::invalid_request,
                                 "'api_key' must be a non-empty string of at most 4096 printable "
                                 "characters",
                                 "api_key", "invalid_api_key_value"});
  }
  auto shared = std::make_shared<http::responder>(std::move(res));
  ask(
      *api, api->key_actor,
      [shared](actors::key_info& k) {
        shared->send(
            json_response(k.replaced ? 200 : 201, key_json(k.provider, k.hint, k.created)));
      },
      [shared](caf::error& e) {
        send_command_error(*shared, actors::command_error(e, key_service_restarted));
      },
      actors::putkey_atom::value, user->id, std::string(*provider), std::string(*key));
}

void list_keys(const std::shared_ptr<const api_context>& api, http::request& req,
               http::responder& res) {
  auto user = authenticate(*api, req, res);
  if (!user) {
    return;
  }
  std::vector<const actors::user_key*> keys;
  for (const auto& k : user->keys) {
    keys.push_back(&k);
  }
  std::sort(keys.begin(), keys.end(),
            [](const auto* a, const auto* b) { return a->provider < b->provider; });
  std::string body;
  {
    json_writer w(body);
    w.start_object().key("object").string("list").key("data").start_array();
    for (const auto* k : keys) {
      write_key(w, k->provider, k->hint, k->created);
    }
    w.end_array().end_object();
  }
  res.send(json_response(200, std::move(body)));
}

void delete_key(const std::shared_ptr<const api_context>& api, http::request& req,
                std::string_view provider, http::responder& res) {
  auto user = authenticate(*api, req, res);
  if (!user) {
    return;
  }
  auto shared = std::make_shared<http::responder>(std::move(res));
  std::string name(provider);
  ask(
      *api, api->key_actor,
      [shared, name](bool removed) {
        if (!removed) {
          return send_error(*shared,
                            error{errc::not_found, "You have no key for provider '" + name + "'.",
                                  "provider", "key_not_found"});
        }
        http::response ok;
        ok.status = 204;
        ok.content_type.clear();
        shared->send(std::move(ok));
      },
      [shared](caf::error& e) {
        send_command_error(*shared, actors::command_error(e, key_service_restarted));
      },
      actors::delkey_atom::value, user->id, name);
}

/// A routed request the gateway refuses itself (bad body, unknown model, bad timeout header),
/// before any upstream call: all of its time so far is the gateway's, sent as
/// `x-inferbridge-overhead-ms` like on every response the request actor answers.
void send_chat_error(http::responder& res, const error& err, steady::time_point start,
                     const http::header_list& rate_headers = {},
                     providers::client_api which = providers::client_api::chat_completions) {
  auto h = own_answer_headers(start);
  h.insert(h.end(), rate_headers.begin(), rate_headers.end());
  send_api_error(res, which, err, std::move(h));
}

/// The user's limits in force (core/rate_limit.hpp), from the configuration.
user_limits limits_of(const config::config& cfg) {
  return {.requests_per_minute = cfg.rate_limits.requests_per_minute,
          .tokens_per_minute = cfg.rate_limits.tokens_per_minute,
          .max_inflight = cfg.limits_.max_inflight_per_user};
}

/// The 429 of a chat request its user's limits refused, with `Retry-After` and the
/// `x-ratelimit-*` headers; the envelope's `code` is OpenAI's `rate_limit_exceeded` for the
/// rates and `too_many_concurrent_requests` for the in-flight limit.
void send_refusal(http::responder& res, const admission& a, const user_limits& lim,
                  http::header_list rate_headers, steady::time_point start,
                  providers::client_api which) {
  error err{errc::rate_limited, {}, {}, "rate_limit_exceeded"};
  const auto again = ". Please try again in " + format_reset(a.retry_after) + ".";
  switch (a.refused) {
    case refusal::inflight:
      err.message = "Too many concurrent requests: at most "
                    + std::to_string(lim.max_inflight)
                    + " of your requests may be in flight at once. Retry when one has "
                      "finished.";
      err.detail_code = "too_many_concurrent_requests";
      break;
    case refusal::requests:
      err.message = "Rate limit reached for requests per minute (RPM): Limit "
                    + std::to_string(lim.requests_per_minute) + ", Requested 1" + again;
      break;
    case refusal::tokens:
    case refusal::none:
      err.message = "Rate limit reached for tokens per minute (TPM): Limit "
                    + std::to_string(lim.tokens_per_minute)
                    + ", Remaining 0 (tokens are counted when an answer completes)" + again;
      break;
  }
  rate_headers.emplace_back("retry-after", std::to_string(retry_after_seconds(a.retry_after)));
  send_chat_error(res, err, start, rate_headers, which);
}

/// A request the user's limits admitted (core/rate_limit.hpp): its in-flight slot (empty when
/// no limit is on) and the `x-ratelimit-*` headers to send with every answer.
struct admitted {
  limit_ticket ticket;
  http::header_list rate_headers;
};

/// Admits a request of `user_id` under the configured limits at `start`, or sends the 429 in
/// `which`'s error shape and returns nothing.
std::optional<admitted> admit(const api_context& api, const std::string& user_id,
                              http::responder& res, steady::time_point start,
                              providers::client_api which) {
  admitted out;
  if (const auto lim = limits_of(*api.cfg); lim.any()) {
    auto a = api.deps->limiter->admit(user_id, lim, start);
    out.rate_headers = rate_limit_headers(a);
    if (a.refused != refusal::none) {
      send_refusal(res, a, lim, std::move(out.rate_headers), start, which);
      return std::nullopt;
    }
    out.ticket = std::move(a.ticket);
  }
  return out;
}

/// Parses the body of a routed request of API `which` (chat completions, or translated into it).
result<providers::chat_request> parse_routed(providers::client_api which, http::request& req,
                                             const config::config& cfg) {
  const providers::parse_limits limits{.max_depth = cfg.limits_.max_json_depth,
                                       .max_messages = cfg.limits_.max_messages};
  using providers::client_api;
  switch (which) {
    case client_api::chat_completions:
      break;
    case client_api::responses:
      return providers::responses::parse_request(std::move(req.body), limits);
    case client_api::messages:
      return providers::anthropic_inbound::parse_request(std::move(req.body), limits,
                                                         req.headers[anthropic_version_header],
                                                         req.headers[anthropic_beta_header]);
    case client_api::count_tokens:
      return providers::anthropic_inbound::parse_count_tokens(std::move(req.body), limits,
                                                              req.headers[anthropic_version_header],
                                                              req.headers[anthropic_beta_header]);
    case client_api::embeddings:
      return providers::embeddings::parse_request(std::move(req.body), limits);
  }
  return providers::parse_chat_request(std::move(req.body), limits);
}

/// A request routed through a tier or `provider/model` with fallback (design §4): chat
/// completions, and the APIs translated into it or forwarded natively (responses, messages,
/// count_tokens, embeddings). Authenticates, admits, parses, routes and spawns the request actor.
void routed_request(const std::shared_ptr<const api_context>& api, http::request& req,
                    http::responder& res, providers::client_api which) {
  auto start = steady::now();
  auto user = authenticate(*api, req, res, start, which);
  if (!user) {
    return;
  }
  const auto& cfg = *api->cfg;
  // Admitted before the body is parsed: a request refused later (bad body, unknown model) still
  // counted against the rate, and its slot is freed when `ticket` goes out of scope.
  auto ok = admit(*api, user->id, res, start, which);
  if (!ok) {
    return;
  }
  limit_ticket ticket = std::move(ok->ticket);
  http::header_list rate_headers = std::move(ok->rate_headers);
  auto parsed = parse_routed(which, req, cfg);
  if (!parsed) {
    return send_chat_error(res, parsed.error(), start, rate_headers, which);
  }
  auto route = which == providers::client_api::embeddings
                   ? config::resolve_embedding_route(cfg, parsed->model)
                   : config::resolve_route(cfg, parsed->model);
  if (!route) {
    return send_chat_error(res, route.error(), start, rate_headers, which);
  }
  auto ctx = std::make_shared<actors::request_context>();
  ctx->tier = std::move(route->tier);
  ctx->plan = std::move(route->plan);
  auto timeout = cfg.limits_.request_timeout;
  const std::string& timeout_ms = req.headers[timeout_header];
  if (!timeout_ms.empty()) {
    std::int64_t ms = 0;
    auto [end, ec] = std::from_chars(timeout_ms.data(), timeout_ms.data() + timeout_ms.size(), ms);
    if (ec != std::errc{} || end != timeout_ms.data() + timeout_ms.size() || ms <= 0) {
      return send_chat_error(
          res,
          error{errc::invalid_request, "x-inferbridge-timeout-ms must be a positive integer",
                "x-inferbridge-timeout-ms"},
          start, rate_headers, which);
    }
    timeout = std::min(timeout, std::chrono::milliseconds(ms));
  }
  ctx->id = new_request_id();
  ctx->start = start;
  ctx->start_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  ctx->deadline = start + timeout;
  ctx->request = std::make_shared<const providers::chat_request>(std::move(*parsed));
  ctx->user = std::move(user);
  ctx->responder = std::move(res);
  ctx->deps = api->deps;
  ctx->limit = std::move(ticket);
  ctx->rate_headers = std::move(rate_headers);
  actors::spawn_request_actor(*api->sys, std::move(ctx));
}

void list_requests(const std::shared_ptr<const api_context>& api, http::request& req,
                   http::responder& res) {
  auto user = authenticate(*api, req, res);
  if (!user) {
    return;
  }
  std::size_t limit = 20;
  if (auto v = http::query_param(req.query(), "limit"); !v.empty()) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size() || n == 0 || n > 100) {
      return send_error(
          res, error{errc::invalid_request, "'limit' must be an integer from 1 to 100", "limit"});
    }
    limit = n;
  }
  auto shared = std::make_shared<http::responder>(std::move(res));
  ask(
      *api, api->metrics_actor,
      [shared](std::string& body) { shared->send(json_response(200, std::move(body))); },
      [shared](caf::error& e) {
        send_command_error(*shared, actors::command_error(e, request_log_restarted));
      },
      actors::listreq_atom::value, user->id, std::uint64_t{limit},
      std::string(http::query_param(req.query(), "before")));
}

void readiness(const std::shared_ptr<const api_context>& api, http::responder& res) {
  auto now = steady::now();
  bool any_usable = false;
  std::string providers;
  {
    json_writer w(providers);
    w.start_object();
    for (const auto& slot : api->deps->board->slots) {
      auto snap = slot->load();
      auto state = effective_state(snap->state, snap->retry_at, now);
      any_usable = any_usable || state != breaker_state::open;
      w.key(slot->provider).string(to_string(state));
    }
    w.end_object();
  }
  std::string body;
  {
    json_writer w(body);
    w.start_object();
    w.key("status").string(any_usable ? "ready" : "unavailable");
    // The HTTP status does not depend on the store: chat keeps working from the snapshot while
    // PostgreSQL is away, so a load balancer must keep sending traffic here (design §10).
    w.key("store").string(api->store == nullptr || api->store->up.load() ? "open" : "unavailable");
    w.key("providers").raw(providers);  // written just above
    w.end_object();
  }
  res.send(json_response(any_usable ? 200 : 503, std::move(body)));
}

}  // namespace

std::string render_models(const config::config& cfg, std::int64_t created) {
  std::string out;
  {
    json_writer w(out);
    w.start_object().key("object").string("list").key("data").start_array();
    auto add = [&](std::string_view id, std::string_view owner) {
      w.start_object();
      w.key("id").string(id);
      w.key("object").string("model");
      w.key("created").integer(created);
      w.key("owned_by").string(owner);
      w.end_object();
    };
    for (const auto& t : cfg.tiers) {
      add(t.name, "inferbridge");
    }
    for (const auto& p : cfg.providers) {
      for (const auto& m : p.models) {
        add(p.name + "/" + m, p.name);
      }
    }
    w.end_array().end_object();
  }
  return out;
}

bool is_plausible_email(std::string_view email) noexcept {
  if (email.size() < 3 || email.size() > 254) {
    return false;
  }
  auto at = email.find('@');
  if (at == 0 || at == std::string_view::npos
      || email.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  auto domain = email.substr(at + 1);
  if (domain.empty() || domain.find('.') == std::string_view::npos || domain.front() == '.'
      || domain.back() == '.') {
    return false;
  }
  return std::none_of(email.begin(), email.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '\\' || c == '<' || c == '>';
  });
}

void handle(const std::shared_ptr<const api_context>& api, http::request&& req,
            http::responder&& res) {
  auto pass = api->deps->gate->enter();
  if (!pass) {
    return send_error(
        res, error{errc::unavailable, "the gateway is shutting down", {}, "shutting_down"});
  }
  auto m = routes().match(req.method, req.path());
  switch (endpoint_of(m)) {
    case endpoint::none: {
      if (m.error == errc::method_not_allowed) {
        return send_error(res,
                          error{errc::method_not_allowed,
                                std::string("Method ") + std::string(http::to_string(req.method))
                                    + " is not allowed on " + std::string(req.path()) + "."},
                          {{"allow", std::string(m.allow)}});
      }
      return send_error(res, error{errc::not_found, "Unknown path " + std::string(req.path())
                                                        + ". See the OpenAI-compatible endpoints "
                                                          "under /v1."});
    }
    case endpoint::create_user:
      return create_user(api, req, res);
    case endpoint::create_key:
      return create_key(api, req, res);
    case endpoint::list_keys:
      return list_keys(api, req, res);
    case endpoint::delete_key:
      return delete_key(api, req, m.param, res);
    case endpoint::chat_completions:
      return routed_request(api, req, res, providers::client_api::chat_completions);
    case endpoint::responses:
      return routed_request(api, req, res, providers::client_api::responses);
    case endpoint::messages:
      return routed_request(api, req, res, providers::client_api::messages);
    case endpoint::count_tokens:
      return routed_request(api, req, res, providers::client_api::count_tokens);
    case endpoint::embeddings:
      return routed_request(api, req, res, providers::client_api::embeddings);
    case endpoint::openai_passthrough: {
      const auto start = steady::now();
      auto user = authenticate(*api, req, res);
      if (!user) {
        return;
      }
      // The same per-user limits as routed requests: in flight, and requests per minute.
      auto ok = admit(*api, user->id, res, start, providers::client_api::chat_completions);
      if (!ok) {
        return;
      }
      return openai_passthrough(api, std::move(user), req, res, std::move(ok->ticket));
    }
    case endpoint::list_models: {
      if (!authenticate(*api, req, res)) {
        return;
      }
      return res.send(json_response(200, api->models_body));
    }
    case endpoint::list_requests:
      return list_requests(api, req, res);
    case endpoint::metrics: {
      if (!req.from_loopback && !api->cfg->metrics_public) {
        return send_error(res, error{errc::forbidden,
                                     "/metrics is served to loopback clients only (set "
                                     "metrics.public to change this)"});
      }
      http::response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = api->deps->registry->serialize();
      return res.send(std::move(r));
    }
    case endpoint::healthz:
      return res.send(json_response(200, R"({"status":"ok"})"));
    case endpoint::readyz:
      return readiness(api, res);
  }
}

}  // namespace ib::app
