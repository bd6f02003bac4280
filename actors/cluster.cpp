#include "actors/cluster.hpp"

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "core/cluster_event.hpp"
#include "metrics/registry.hpp"
#include "storage/pg_store.hpp"

namespace ib::actors {

std::int64_t wall_ms_now() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// -- the cluster bus ------------------------------------------------------------------------------

struct bus_state {
  std::shared_ptr<storage::pg_store> store;
  static inline const char* name = "cluster_bus";
};

using bus_actor = cluster_bus_handle::stateful_pointer<bus_state>;

cluster_verdict lost_to(const std::optional<storage::shared_breaker>& row) {
  cluster_verdict v;
  v.kind = cluster_verdict::lost;
  if (row) {
    v.row_found = true;
    v.row_open = row->state == breaker_state::open;
    v.retry_at_ms = row->retry_at_ms;
    v.next_cooldown_ms = row->next_cooldown_ms;
    v.probe_until_ms = row->probe_until_ms;
  }
  return v;
}

void log_failure(std::string_view what, const error& e) {
  log(log_level::debug, "cluster bus: call failed; deciding locally",
      {{"call", what}, {"error", e.message}});
}

cluster_bus_handle::behavior_type cluster_bus(bus_actor self,
                                              std::shared_ptr<storage::pg_store> store) {
  self->state.store = std::move(store);
  return {
      [self](publish_atom, const std::string& provider, std::int64_t retry_at_ms,
             std::int64_t next_cooldown_ms) -> cluster_verdict {
        auto r =
            self->state.store->publish_open(provider, retry_at_ms, next_cooldown_ms, wall_ms_now());
        if (!r) {
          log_failure("publish_open", r.error());
          return cluster_verdict{};
        }
        if (!*r) {
          cluster_verdict v;
          v.kind = cluster_verdict::done;
          return v;
        }
        return lost_to(*r);
      },
      [self](closed_atom, const std::string& provider) {
        if (auto r = self->state.store->publish_closed(provider, wall_ms_now()); !r) {
          log_failure("publish_closed", r.error());
        }
      },
      [self](lease_atom, const std::string& provider, std::int64_t retry_at_ms,
             std::int64_t next_cooldown_ms, std::int64_t lease_ms) -> cluster_verdict {
        auto r = self->state.store->try_probe_lease(provider, retry_at_ms, next_cooldown_ms,
                                                    lease_ms, wall_ms_now());
        if (!r) {
          log_failure("try_probe_lease", r.error());
          return cluster_verdict{};
        }
        if (r->won) {
          cluster_verdict v;
          v.kind = cluster_verdict::done;
          return v;
        }
        return lost_to(r->row);
      },
      [self](extend_atom, const std::string& provider, std::int64_t retry_at_ms,
             std::int64_t until_ms) {
        if (auto r = self->state.store->extend_probe_lease(provider, retry_at_ms, until_ms); !r) {
          log_failure("extend_probe_lease", r.error());
        }
      },
      [self](cooldown_atom, const std::string& provider, const std::string& user_id,
             std::int64_t until_ms) {
        cooldown_event ev{self->state.store->options().node, provider, user_id, until_ms};
        if (auto r = self->state.store->notify(encode(ev)); !r) {
          log_failure("notify", r.error());
        }
      },
  };
}

}  // namespace

cluster_bus_handle spawn_cluster_bus(caf::actor_system& sys,
                                     std::shared_ptr<storage::pg_store> store) {
  return sys.spawn<caf::detached>(cluster_bus, std::move(store));
}

// -- the cluster listener -------------------------------------------------------------------------

cluster_listener::cluster_listener(std::shared_ptr<storage::pg_store> store, targets to,
                                   std::chrono::milliseconds resync,
                                   std::shared_ptr<store_status> status,
                                   std::shared_ptr<metrics::registry> registry)
    : store_(std::move(store)),
      to_(std::move(to)),
      resync_(resync),
      status_(std::move(status)),
      registry_(std::move(registry)) {}

cluster_listener::~cluster_listener() {
  stop();
}

void cluster_listener::start() {
  thread_ = std::thread([this] { run(); });
}

void cluster_listener::stop() {
  {
    std::lock_guard lock(wake_mu_);
    stopping_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  // Drop the handles: the actor system waits for nothing we hold.
  to_ = targets{};
}

void cluster_listener::set_up(bool up) {
  const bool was = status_->up.exchange(up);
  if (registry_) {
    registry_->set_store_up("postgres", up);
  }
  if (was != up) {
    if (up) {
      log(log_level::info, "store reachable again: writes accepted, catching up", {});
    } else {
      log(log_level::error,
          "store unreachable: chat continues from the snapshot; sign-up and key writes answer 503",
          {});
    }
  }
}

void cluster_listener::run() {
  auto backoff = std::chrono::milliseconds{100};
  while (!stopping_.load()) {
    if (serve_connection()) {
      backoff = std::chrono::milliseconds{100};  // it was up: start over after a loss
    }
    if (stopping_.load()) {
      break;
    }
    set_up(false);
    // Wait out the backoff, or until stop() says to end.
    {
      std::unique_lock lock(wake_mu_);
      wake_.wait_for(lock, backoff, [this] { return stopping_.load(); });
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds{5000});
  }
}

bool cluster_listener::serve_connection() {
  auto conn = store_->open_listener();
  if (!conn) {
    return false;
  }
  set_up(true);
  // LISTEN is in place: whatever was missed before is healed by a full resync now.
  resync();
  auto next_resync = std::chrono::steady_clock::now() + resync_;
  while (!stopping_.load()) {
    auto readable = conn->wait_readable(std::chrono::milliseconds{200});
    if (!readable) {
      return true;
    }
    if (*readable) {
      auto notes = conn->poll_notifications();
      if (!notes) {
        return true;
      }
      for (const auto& n : *notes) {
        dispatch(n.payload);
      }
    }
    if (std::chrono::steady_clock::now() >= next_resync) {
      // Also proves the connection alive (a statement on it, bounded).
      auto ping = conn->exec("SELECT 1", {}, storage::pg::clock::now() + std::chrono::seconds(3));
      if (!ping) {
        return true;
      }
      resync();
      next_resync = std::chrono::steady_clock::now() + resync_;
    }
  }
  return true;
}

void cluster_listener::resync() {
  if (to_.keys) {
    caf::anon_send(to_.keys, reload_atom::value);
  }
  auto rows = store_->read_breakers();
  if (!rows) {
    return;
  }
  const auto& self = store_->options().node;
  for (const auto& row : *rows) {
    if (row.updated_by == self) {
      continue;
    }
    auto it = to_.supervisors.find(row.provider);
    if (it == to_.supervisors.end()) {
      continue;
    }
    caf::anon_send(it->second, remote_atom::value, row.state == breaker_state::open,
                   row.retry_at_ms, row.next_cooldown_ms);
  }
}

void cluster_listener::dispatch(std::string_view payload) {
  auto ev = decode(payload);
  if (!ev) {
    log(log_level::warn, "cluster: ignored a malformed notification",
        {{"error", ev.error().message}});
    return;
  }
  if (node_of(*ev) == store_->options().node) {
    return;
  }
  if (auto* k = std::get_if<key_event>(&*ev)) {
    caf::anon_send(to_.keys, refresh_atom::value, k->user_id);
  } else if (auto* b = std::get_if<breaker_event>(&*ev)) {
    if (auto it = to_.supervisors.find(b->provider); it != to_.supervisors.end()) {
      caf::anon_send(it->second, remote_atom::value, b->state == breaker_state::open,
                     b->retry_at_ms, b->next_cooldown_ms);
    }
  } else if (auto* c = std::get_if<cooldown_event>(&*ev)) {
    if (auto it = to_.supervisors.find(c->provider); it != to_.supervisors.end()) {
      caf::anon_send(it->second, remote_atom::value, c->user_id, c->until_ms);
    }
  }
}

}  // namespace ib::actors
