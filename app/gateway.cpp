#include "app/gateway.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>

#include "actors/asio_scheduler.hpp"
#include "actors/cluster.hpp"
#include "actors/health_supervisor.hpp"
#include "actors/key_actor.hpp"
#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "actors/metrics_actor.hpp"
#include "actors/request_actor.hpp"
#include "app/api.hpp"
#include "app/memory_release.hpp"
#include "app/passthrough.hpp"
#include "app/routes.hpp"
#include "app/store_open.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/master_key.hpp"
#include "storage/pg_store.hpp"
#include "storage/secrets.hpp"

namespace ib::app {

namespace net = boost::asio;
using actors::log;
using actors::log_level;

namespace {

// -- the steps, each a small function with a typed result ----------------------------------------

/// Step 2: reads every gateway key, user and provider key into the snapshot the I/O threads
/// read. Errors: a stored provider key that no master key decrypts, or a storage error.
result<std::shared_ptr<const actors::key_snapshot>> load_keys(const opened_store& s) {
  return actors::load_key_snapshot(*s.store, *s.keyring);
}

/// How many threads run I/O and actors.
struct thread_plan {
  int io = 1;
  int actors = 0;  ///< CAF worker threads; 0 when the actors run on the I/O threads
  bool actors_on_io = true;
};

int threads_or_default(int configured, int fallback) {
  return configured > 0 ? configured : std::max(1, fallback);
}

thread_plan plan_threads(const config::server_config& s) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  thread_plan t;
  t.actors_on_io = s.scheduler == config::scheduler_kind::io;
  // Half the cores by default: on a 2-core machine one thread running both I/O and actors spent
  // the least CPU per request (the other core serves the kernel's network stack and peers).
  t.io = threads_or_default(s.io_threads, cores / 2);
  t.actors = t.actors_on_io ? 0 : threads_or_default(s.actor_threads, cores - t.io);
  return t;
}

/// The long-lived service actors and what they share. Both handles are supervisors: they
/// forward to the current key actor / metrics actor and restart it (and the request-log writer)
/// if it dies, so they stay valid for good.
struct services {
  /// The handle types the spawn functions return (their supervisors' typed interfaces).
  using key_handle = decltype(actors::spawn_key_actor(std::declval<caf::actor_system&>(), nullptr,
                                                      nullptr, nullptr));
  using metrics_handle = decltype(actors::spawn_metrics_actor(
      std::declval<caf::actor_system&>(), nullptr, nullptr, config::request_log_config{}));

  std::shared_ptr<metrics::registry> registry;
  std::shared_ptr<actors::key_directory> keys;
  key_handle key_actor;
  metrics_handle metrics_actor;
  std::shared_ptr<actors::store_status> store_status;
  actors::cluster_bus_handle bus;  ///< several nodes only
};

/// Step 3: spawns the key actor and the metrics actor (with the request-log writer).
services spawn_services(caf::actor_system& sys, const config::config& cfg,
                        const opened_store& store,
                        std::shared_ptr<const actors::key_snapshot> snapshot) {
  services out;
  out.registry = std::make_shared<metrics::registry>();
  out.keys = std::make_shared<actors::key_directory>();
  out.keys->snapshot.store(std::move(snapshot));
  out.key_actor = actors::spawn_key_actor(sys, store.store, store.keyring, out.keys, out.registry);
  out.metrics_actor = actors::spawn_metrics_actor(sys, out.registry, store.store, cfg.request_log,
                                                  cfg.store.max_buffered_records);
  out.store_status = std::make_shared<actors::store_status>();
  out.store_status->kind = std::string(store.store->kind());
  out.registry->set_store_up(out.store_status->kind, true);
  if (store.pg != nullptr) {
    out.bus = actors::spawn_cluster_bus(sys, store.health);
  }
  return out;
}

/// One health supervisor per configured provider (each spawns its provider actor), and the
/// board their snapshots are published on.
struct provider_fleet {
  std::shared_ptr<actors::health_board> board = std::make_shared<actors::health_board>();
  std::vector<actors::health_supervisor_handle> supervisors;
};

/// Step 4: spawns the providers, in config order.
provider_fleet spawn_providers(caf::actor_system& sys, const config::config& cfg,
                               net::io_context& io, const services& svc) {
  provider_fleet out;
  for (const auto& p : cfg.providers) {
    auto slot = std::make_shared<actors::health_slot>();
    slot->provider = p.name;
    actors::supervisor_options opts;
    opts.provider = std::make_shared<const config::provider_config>(p);
    opts.breaker = cfg.breaker;
    opts.cooldown = cfg.cooldown;
    opts.io = &io;
    opts.max_upstream_body = cfg.limits_.max_upstream_body_bytes;
    opts.ca_file = cfg.extra_ca_file;
    opts.metrics = svc.registry;
    opts.bus = svc.bus;
    opts.probe_lease = cfg.store.probe_lease;
    out.supervisors.push_back(actors::spawn_health_supervisor(sys, std::move(opts), slot));
    out.board->slots.push_back(std::move(slot));
  }
  return out;
}

/// What every request actor shares: the config, the health board, the metrics actor.
std::shared_ptr<actors::gateway_deps> make_deps(std::shared_ptr<const config::config> cfg,
                                                const services& svc, const provider_fleet& fleet) {
  auto deps = std::make_shared<actors::gateway_deps>();
  deps->cfg = std::move(cfg);
  deps->board = fleet.board;
  deps->metrics = svc.metrics_actor;
  deps->registry = svc.registry;
  return deps;
}

/// What the endpoint functions need (app/api.hpp); `GET /v1/models` is rendered here, once.
std::shared_ptr<api_context> make_api(caf::actor_system& sys,
                                      std::shared_ptr<const config::config> cfg,
                                      const services& svc,
                                      std::shared_ptr<const actors::gateway_deps> deps) {
  auto api = std::make_shared<api_context>();
  api->sys = &sys;
  api->cfg = cfg;
  api->keys = svc.keys;
  api->key_actor = svc.key_actor;
  api->metrics_actor = svc.metrics_actor;
  api->deps = std::move(deps);
  api->store = svc.store_status;
  api->models_body = render_models(*cfg, std::time(nullptr));
  for (const auto& p : cfg->providers) {
    if (!api->provider_list.empty()) {
      api->provider_list += ", ";
    }
    api->provider_list += p.name;
  }
  return api;
}

/// The HTTP server's limits, kept headers and TLS files, from the config.
http::server_options server_options_for(const config::config& cfg) {
  http::server_options o;
  o.host = cfg.server.host;
  o.port = cfg.server.port;
  o.max_body_bytes = cfg.limits_.max_body_bytes;
  o.max_header_bytes = cfg.limits_.max_header_bytes;
  o.max_header_count = cfg.limits_.max_header_count;
  o.max_url_bytes = cfg.limits_.max_url_bytes;
  o.max_connections = cfg.limits_.max_connections;
  o.read_timeout = cfg.limits_.client_read_timeout;
  o.idle_timeout = cfg.limits_.client_idle_timeout;
  o.tls_cert_file = cfg.tls.cert_file;
  o.tls_key_file = cfg.tls.key_file;
  o.kept_headers.assign(kept_header_names.begin(), kept_header_names.end());
  // Pass-through bodies (audio, files) are streamed to OpenAI, never held whole.
  o.streamed_body = [limit = cfg.limits_.max_passthrough_body_bytes](http::method m,
                                                                     std::string_view target) {
    return passthrough_body_limit(limit, m, target);
  };
  o.server_name = "inferbridge";
  return o;
}

// -- the wiring ---------------------------------------------------------------------------------

/// The running gateway: every long-lived piece, as members in start order. `run` starts them
/// (I/O threads, actor system, services, providers, listener), waits for SIGINT/SIGTERM and
/// stops them in reverse order in `shutdown`, the one place that does.
///
/// The io_context and its threads come first and go last: with the "io" scheduler the actors
/// run on them, also while the actor system shuts down.
class gateway {
 public:
  gateway(std::shared_ptr<const config::config> cfg, opened_store store,
          std::shared_ptr<const actors::key_snapshot> snapshot)
      : cfg_(std::move(cfg)),
        store_(std::move(store)),
        snapshot_(std::move(snapshot)),
        threads_(plan_threads(cfg_->server)),
        io_(threads_.io) {}

  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;
  ~gateway() { shutdown(); }

  /// Starts everything, serves until a signal, shuts down. Returns the process exit code: 0, or
  /// 2 when the listener cannot bind.
  int run() {
    start_io();
    start_actor_system();
    services_ = spawn_services(*system_, *cfg_, store_, snapshot_);
    fleet_ = spawn_providers(*system_, *cfg_, io_, services_);
    start_cluster_listener();
    deps_ = make_deps(cfg_, services_, fleet_);
    api_ = make_api(*system_, cfg_, services_, deps_);
    int code = 0;
    releaser_.emplace(io_);
    releaser_->start();
    if (auto rc = start_listener(); !rc) {
      std::fprintf(stderr, "inferbridge: %s\n", rc.error().message.c_str());
      code = 2;
    } else {
      int sig = stopped_.get();
      log(log_level::info, "shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    }
    shutdown();
    return code;
  }

 private:
  /// Starts `threads_.io` threads running the io_context (kept busy by a work guard).
  void start_io() {
    work_.emplace(net::make_work_guard(io_));
    io_pool_.reserve(static_cast<std::size_t>(threads_.io));
    for (int i = 0; i < threads_.io; ++i) {
      io_pool_.emplace_back([this] { io_.run(); });
    }
  }

  /// Starts the actor system: on the I/O threads, or on its own `threads_.actors` workers.
  void start_actor_system() {
    if (threads_.actors_on_io) {
      actors::use_asio_scheduler(actor_cfg_, io_);
    } else {
      actor_cfg_.set("scheduler.max-threads", static_cast<std::size_t>(threads_.actors));
      actor_cfg_.set("scheduler.policy", caf::atom("sharing"));
    }
    system_ = std::make_unique<caf::actor_system>(actor_cfg_);
  }

  /// Step 5: binds, catches signals, starts accepting and prints `listening on HOST:PORT` as the
  /// first line on stdout. Errors: the bind's (address in use, bad address).
  result<void> start_listener() {
    std::shared_ptr<const api_context> api = api_;
    server_ = std::make_unique<http::server>(io_, server_options_for(*cfg_),
                                             [api](http::request&& req, http::responder&& res) {
                                               handle(api, std::move(req), std::move(res));
                                             });
    // Signals are caught from here on, before anyone can learn the port and send one.
    stopped_ = stop_.get_future();
    signals_.emplace(io_, SIGINT, SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        stop_.set_value(sig);
      }
    });
    if (auto rc = server_->listen(); !rc) {
      return rc;
    }
    if (server_->is_tls()) {
      hangups_.emplace(io_, SIGHUP);
      await_hangup();
    }
    server_->start();
    listening_ = true;
    std::string host = cfg_->server.host;
    if (host.find(':') != std::string::npos) {
      host = "[" + host + "]";
    }
    std::printf("listening on %s:%u\n", host.c_str(), static_cast<unsigned>(server_->port()));
    std::fflush(stdout);
    log(log_level::info, "inferbridge started",
        {{"listen", host + ":" + std::to_string(server_->port())},
         {"tls", server_->is_tls()},
         {"io_threads", threads_.io},
         {"actor_threads", threads_.actors},
         {"actors_on_io", threads_.actors_on_io},
         {"providers", cfg_->providers.size()},
         {"tiers", cfg_->tiers.size()},
         {"store", store_.store->kind()},
         {"node", store_.node},
         {"data_dir", cfg_->data_dir}});
    return {};
  }

  /// TLS: on each SIGHUP, reads the certificate and key again (new connections use them); a
  /// file that cannot be used is logged and the current ones stay.
  void await_hangup() {
    hangups_->async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) {
        return;  // cancelled at shutdown
      }
      if (auto rc = server_->reload_tls(); !rc) {
        log(log_level::error, "TLS reload failed; the previous certificate stays in use",
            {{"error", rc.error().message}});
      } else {
        log(log_level::info, "TLS certificate reloaded", {{"cert_file", cfg_->tls.cert_file}});
      }
      await_hangup();
    });
  }

  /// Several nodes: starts the thread that hears the other nodes' writes and health.
  void start_cluster_listener() {
    if (store_.pg == nullptr) {
      return;
    }
    actors::cluster_listener::targets to;
    to.keys = services_.key_actor;
    for (std::size_t i = 0; i < fleet_.supervisors.size(); ++i) {
      to.supervisors.emplace(cfg_->providers[i].name, fleet_.supervisors[i]);
    }
    listener_ = std::make_unique<actors::cluster_listener>(
        store_.health, std::move(to), cfg_->store.resync_interval, services_.store_status,
        services_.registry);
    listener_->start();
  }

  /// Stops everything that `run` started, in reverse order; safe to call twice.
  void shutdown() {
    if (releaser_) {
      releaser_->stop();
    }
    if (hangups_) {
      boost::system::error_code ec;
      hangups_->cancel(ec);
    }
    if (listening_) {
      listening_ = false;
      server_->close();
      // Let in-flight requests finish (bounded), then stop the long-lived actors.
      deps_->inflight->await_idle(std::chrono::seconds(10));
    }
    if (listener_ != nullptr) {
      listener_->stop();  // it sends to the actors: stop it first
      listener_.reset();
    }
    if (system_ != nullptr) {
      stop_actors();
    }
    stop_io();
  }

  /// Closes the gate, stops the long-lived actors and the actor system (the I/O threads still
  /// run, for the actors' last steps).
  void stop_actors() {
    // No I/O thread may use the actor system from here on (late requests get 503).
    if (deps_ != nullptr) {
      deps_->gate->close_and_wait();
    }
    for (const auto& s : fleet_.supervisors) {
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    }
    // Each supervisor passes the exit on to its children: the key actor finishes the commands
    // queued before it; the metrics actor flushes its batch and then stops the writer.
    if (services_.key_actor != nullptr) {
      caf::anon_send_exit(services_.key_actor, caf::exit_reason::user_shutdown);
    }
    if (services_.metrics_actor != nullptr) {
      caf::anon_send_exit(services_.metrics_actor, caf::exit_reason::user_shutdown);
    }
    if (services_.bus != nullptr) {
      caf::anon_send_exit(services_.bus, caf::exit_reason::user_shutdown);
    }
    system_->await_all_actors_done();
    // Drop every handle on a detached actor: the actor system waits for their threads, which
    // end only when nothing refers to them any more. (Sessions still alive hold the API
    // context.)
    fleet_.supervisors.clear();
    services_.key_actor = nullptr;
    services_.metrics_actor = nullptr;
    services_.bus = nullptr;
    if (api_ != nullptr) {
      api_->key_actor = nullptr;
      api_->metrics_actor = nullptr;
      deps_->metrics = nullptr;
    }
    system_.reset();  // while the I/O threads still run the actors' last steps
  }

  /// Releases the work guard, stops the io_context and joins its threads.
  void stop_io() {
    work_.reset();
    io_.stop();
    for (auto& t : io_pool_) {
      t.join();
    }
    io_pool_.clear();
  }

  std::shared_ptr<const config::config> cfg_;
  opened_store store_;
  std::shared_ptr<const actors::key_snapshot> snapshot_;
  thread_plan threads_;
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> io_pool_;
  caf::actor_system_config actor_cfg_;  ///< the actor system refers to it while it lives
  std::unique_ptr<caf::actor_system> system_;
  services services_;
  provider_fleet fleet_;
  std::shared_ptr<actors::gateway_deps> deps_;
  std::shared_ptr<api_context> api_;
  std::unique_ptr<http::server> server_;
  std::unique_ptr<actors::cluster_listener> listener_;  ///< several nodes only
  std::promise<int> stop_;
  std::future<int> stopped_;
  std::optional<net::signal_set> signals_;
  std::optional<net::signal_set> hangups_;  ///< SIGHUP, with TLS only: reload the certificate
  bool listening_ = false;
  std::optional<memory_releaser> releaser_;  ///< gives memory back after a burst (tcmalloc)
};

}  // namespace

int run_gateway(const config::config& cfg_in) {
  auto cfg = std::make_shared<const config::config>(cfg_in);
  auto store = open_storage(*cfg);
  if (!store) {
    std::fprintf(stderr, "inferbridge: %s\n", store.error().message.c_str());
    return 2;
  }
  auto snapshot = load_keys(*store);
  if (!snapshot) {
    std::fprintf(stderr, "inferbridge: %s\n", snapshot.error().message.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  actors::configure_logging(cfg->log.level, cfg->log.format);
  int code = 0;
  {
    gateway gw{std::move(cfg), std::move(*store), std::move(*snapshot)};
    code = gw.run();
  }
  // Every actor and I/O thread has stopped: write what the log still holds before exiting
  // (bounded: a stdout that nobody reads must not keep the process alive).
  actors::process_logger().flush_for(std::chrono::seconds(2));
  return code;
}

}  // namespace ib::app
