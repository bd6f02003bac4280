#include "app/gateway.hpp"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>

#include "actors/asio_scheduler.hpp"
#include "actors/health_supervisor.hpp"
#include "actors/key_actor.hpp"
#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "actors/metrics_actor.hpp"
#include "actors/request_actor.hpp"
#include "app/api.hpp"
#include "app/routes.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/master_key.hpp"

namespace ib::app {

namespace net = boost::asio;
using actors::log_line;

namespace {

struct opened_store {
  std::shared_ptr<storage::key_store> store;
  std::shared_ptr<const storage::fernet_keyring> keyring;
};

result<opened_store> open_store(const config::config& cfg) {
  auto store = storage::key_store::open(cfg.data_dir);
  if (!store) {
    return std::move(store).error();
  }
  auto keys = storage::load_master_keys(cfg.master_keys, cfg.data_dir);
  if (!keys) {
    return std::move(keys).error();
  }
  opened_store out;
  out.store = std::shared_ptr<storage::key_store>(std::move(*store));
  out.keyring = std::make_shared<const storage::fernet_keyring>(std::move(*keys));
  return out;
}

int threads_or_default(int configured, int fallback) {
  return configured > 0 ? configured : std::max(1, fallback);
}

}  // namespace

int run_gateway(const config::config& cfg_in) {
  auto cfg = std::make_shared<const config::config>(cfg_in);
  auto opened = open_store(*cfg);
  if (!opened) {
    std::fprintf(stderr, "inferbridge: %s\n", opened.error().message.c_str());
    return 2;
  }
  auto snapshot = actors::load_key_snapshot(*opened->store, *opened->keyring);
  if (!snapshot) {
    std::fprintf(stderr, "inferbridge: %s\n", snapshot.error().message.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool on_io = cfg->server.scheduler == config::scheduler_kind::io;
  // Half the cores by default: on a 2-core machine one thread running both I/O and actors spent
  // the least CPU per request (the other core serves the kernel's network stack and peers).
  int io_threads = threads_or_default(cfg->server.io_threads, cores / 2);
  int actor_threads = on_io ? 0 : threads_or_default(cfg->server.actor_threads, cores - io_threads);

  // The io_context and its threads come first and go last: with the "io" scheduler the actors
  // run on them, also while the actor system shuts down.
  net::io_context io{io_threads};
  auto work = net::make_work_guard(io);
  std::vector<std::thread> io_pool;
  io_pool.reserve(static_cast<std::size_t>(io_threads));
  for (int i = 0; i < io_threads; ++i) {
    io_pool.emplace_back([&io] { io.run(); });
  }
  auto stop_io = [&] {
    work.reset();
    io.stop();
    for (auto& t : io_pool) {
      t.join();
    }
  };

  caf::actor_system_config acfg;
  if (on_io) {
    actors::use_asio_scheduler(acfg, io);
  } else {
    acfg.set("scheduler.max-threads", static_cast<std::size_t>(actor_threads));
    acfg.set("scheduler.policy", caf::atom("sharing"));
  }
  auto system = std::make_unique<caf::actor_system>(acfg);
  auto& sys = *system;

  auto registry = std::make_shared<metrics::registry>();
  auto keys = std::make_shared<actors::key_directory>();
  keys->snapshot.store(*snapshot);
  // Both handles are supervisors: they forward to the current key actor / metrics actor and
  // restart it (and the request-log writer) if it dies, so these handles stay valid for good.
  auto key_actor = actors::spawn_key_actor(sys, opened->store, opened->keyring, keys);
  auto metrics_actor = actors::spawn_metrics_actor(sys, registry, opened->store, cfg->request_log);

  auto board = std::make_shared<actors::health_board>();
  std::vector<caf::actor> supervisors;
  for (const auto& p : cfg->providers) {
    auto slot = std::make_shared<actors::health_slot>();
    slot->provider = p.name;
    actors::supervisor_options opts;
    opts.provider = std::make_shared<const config::provider_config>(p);
    opts.breaker = cfg->breaker;
    opts.cooldown = cfg->cooldown;
    opts.io = &io;
    opts.max_upstream_body = cfg->limits_.max_upstream_body_bytes;
    opts.ca_file = cfg->extra_ca_file;
    opts.metrics = registry;
    supervisors.push_back(actors::spawn_health_supervisor(sys, std::move(opts), slot));
    board->slots.push_back(std::move(slot));
  }

  auto deps = std::make_shared<actors::gateway_deps>();
  deps->cfg = cfg;
  deps->board = board;
  deps->metrics = metrics_actor;
  deps->registry = registry;

  auto api = std::make_shared<api_context>();
  api->sys = &sys;
  api->cfg = cfg;
  api->keys = keys;
  api->key_actor = key_actor;
  api->metrics_actor = metrics_actor;
  api->deps = deps;
  api->models_body = render_models(*cfg, std::time(nullptr));
  for (const auto& p : cfg->providers) {
    if (!api->provider_list.empty()) {
      api->provider_list += ", ";
    }
    api->provider_list += p.name;
  }

  http::server_options sopts;
  sopts.host = cfg->server.host;
  sopts.port = cfg->server.port;
  sopts.max_body_bytes = cfg->limits_.max_body_bytes;
  sopts.max_header_bytes = cfg->limits_.max_header_bytes;
  sopts.read_timeout = cfg->limits_.client_read_timeout;
  sopts.idle_timeout = cfg->limits_.client_idle_timeout;
  sopts.kept_headers.assign(kept_header_names.begin(), kept_header_names.end());
  sopts.server_name = "inferbridge";
  std::shared_ptr<const api_context> api_ro = api;
  http::server server{io, sopts, [api_ro](http::request&& req, http::responder&& res) {
                        handle(api_ro, std::move(req), std::move(res));
                      }};
  // Signals are caught from here on, before anyone can learn the port and send one.
  std::promise<int> stop;
  auto stopped = stop.get_future();
  net::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&stop](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      stop.set_value(sig);
    }
  });
  int code = 0;
  if (auto rc = server.listen(); !rc) {
    std::fprintf(stderr, "inferbridge: %s\n", rc.error().message.c_str());
    code = 2;
  } else {
    server.start();
    std::string host = cfg->server.host;
    if (host.find(':') != std::string::npos) {
      host = "[" + host + "]";
    }
    std::printf("listening on %s:%u\n", host.c_str(), static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    log_line("inferbridge started: " + std::to_string(io_threads) + " I/O threads, "
             + (on_io ? std::string("actors on the I/O threads")
                      : std::to_string(actor_threads) + " actor threads")
             + ", " + std::to_string(cfg->providers.size()) + " providers, "
             + std::to_string(cfg->tiers.size()) + " tiers, data dir " + cfg->data_dir);

    int sig = stopped.get();
    log_line(std::string("shutting down on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    server.close();
    // Let in-flight requests finish (bounded), then stop the long-lived actors.
    deps->inflight->await_idle(std::chrono::seconds(10));
  }
  // No I/O thread may use the actor system from here on (late requests get 503).
  deps->gate->close_and_wait();
  for (const auto& s : supervisors) {
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  }
  // Each supervisor passes the exit on to its children: the key actor finishes the commands
  // queued before it; the metrics actor flushes its batch and then stops the writer.
  caf::anon_send_exit(key_actor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(metrics_actor, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
  // Drop every handle on a detached actor: the actor system waits for their threads, which end
  // only when nothing refers to them any more. (Sessions still alive hold the API context.)
  supervisors.clear();
  key_actor = nullptr;
  metrics_actor = nullptr;
  api->key_actor = nullptr;
  api->metrics_actor = nullptr;
  deps->metrics = nullptr;
  system.reset();  // while the I/O threads still run the actors' last steps
  stop_io();
  return code;
}

int rotate_master_key(const config::config& cfg) {
  auto opened = open_store(cfg);
  if (!opened) {
    std::fprintf(stderr, "inferbridge: %s\n", opened.error().message.c_str());
    return 2;
  }
  const auto& keyring = *opened->keyring;
  auto n = opened->store->rewrite_provider_tokens(
      [&](const storage::provider_key_record& rec) -> result<std::string> {
        auto plain = keyring.decrypt(rec.token);
        if (!plain) {
          return error{errc::crypto, "a stored provider key (" + rec.provider
                                         + ") does not decrypt with any master key"};
        }
        return keyring.encrypt(*plain);
      });
  if (!n) {
    std::fprintf(stderr, "inferbridge: %s; nothing was changed\n", n.error().message.c_str());
    return 2;
  }
  std::printf("re-encrypted %zu provider keys under the first master key\n", *n);
  return 0;
}

}  // namespace ib::app
