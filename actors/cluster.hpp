#pragma once

// Several nodes on one PostgreSQL (design §10): the cluster bus (the actor through which health
// supervisors publish breaker transitions and 429 cooldowns and ask for the probe lease) and the
// cluster listener (the thread that hears what other nodes published and tells the key actor and
// the supervisors). Neither exists in the single-node (LMDB) mode.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace ib::storage {
class pg_store;
}
namespace ib::metrics {
class registry;
}

namespace ib::actors {

/// Whether the store is reachable: `up` is written by the cluster listener (always true for
/// LMDB) and read by `/readyz`; `kind` is `lmdb` or `postgres`.
struct store_status {
  std::string kind = "lmdb";
  std::atomic<bool> up{true};
};

/// The cluster bus's answer to a publish or a lease request.
struct cluster_verdict {
  enum kind_t : std::uint8_t {
    done = 0,         ///< ours was written / the lease is ours
    lost = 1,         ///< another node's row stands: the fields below describe it
    unavailable = 2,  ///< PostgreSQL did not answer: decide locally
  };
  std::uint8_t kind = unavailable;
  bool row_found = false;  ///< lost: false when the provider has no row at all
  bool row_open = false;   ///< lost: the row says open (else closed)
  std::int64_t retry_at_ms = 0;
  std::int64_t next_cooldown_ms = 0;
  std::int64_t probe_until_ms = 0;  ///< lost: when another node's lease ends (Unix ms)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_verdict& x) {
  return f(caf::meta::type_name("cluster_verdict"), x.kind, x.row_found, x.row_open, x.retry_at_ms,
           x.next_cooldown_ms, x.probe_until_ms);
}

/// The cluster bus (detached: every handler is a bounded PostgreSQL call). All times are
/// wall-clock Unix ms. `(publish_atom, provider, retry_at_ms, next_cooldown_ms) -> verdict`:
/// this node's breaker opened; `(closed_atom, provider)`: its probe closed it;
/// `(lease_atom, provider, retry_at_ms, next_cooldown_ms, lease_ms) -> verdict`: may this node
/// send the half-open probe of that open period; `(extend_atom, provider, retry_at_ms,
/// until_ms)`: the probe is out, keep the lease until then; `(cooldown_atom, provider, user_id,
/// until_ms)`: a 429 cooldown to tell the other nodes. A failed call is logged at debug level
/// and, for the two requests, answered `unavailable`.
using cluster_bus_handle = caf::typed_actor<
    caf::replies_to<publish_atom, std::string, std::int64_t, std::int64_t>::with<cluster_verdict>,
    caf::reacts_to<closed_atom, std::string>,
    caf::replies_to<lease_atom, std::string, std::int64_t, std::int64_t,
                    std::int64_t>::with<cluster_verdict>,
    caf::reacts_to<extend_atom, std::string, std::int64_t, std::int64_t>,
    caf::reacts_to<cooldown_atom, std::string, std::string, std::int64_t>>;

/// Spawns the cluster bus over `store`.
cluster_bus_handle spawn_cluster_bus(caf::actor_system& sys,
                                     std::shared_ptr<storage::pg_store> store);

/// The wall clock as Unix milliseconds (what nodes exchange; design §10).
std::int64_t wall_ms_now() noexcept;

/// The thread that LISTENs on `inferbridge` and passes what other nodes published on: key
/// events to the key supervisor (`refresh_atom`), breaker and cooldown events to the provider's
/// health supervisor (`remote_atom`); its own node's events are ignored. After every (re)connect
/// and every `resync` it rebuilds the key snapshot (`reload_atom`) and replays the breakers
/// table, so missed notifications heal. While PostgreSQL is away it sets `status->up` false and
/// `inferbridge_store_up{kind="postgres"}` 0 and reconnects with backoff (100 ms doubling to
/// 5 s). Its PostgreSQL calls are bounded by the store's timeout; it never runs on an I/O thread.
class cluster_listener {
 public:
  /// Who is told.
  struct targets {
    key_supervisor_handle keys;
    std::unordered_map<std::string, health_supervisor_handle> supervisors;  ///< by provider
  };

  cluster_listener(std::shared_ptr<storage::pg_store> store, targets to,
                   std::chrono::milliseconds resync, std::shared_ptr<store_status> status,
                   std::shared_ptr<metrics::registry> registry);
  ~cluster_listener();
  cluster_listener(const cluster_listener&) = delete;
  cluster_listener& operator=(const cluster_listener&) = delete;

  /// Starts the thread.
  void start();
  /// Stops the thread and joins it (within about 200 ms plus one bounded call).
  void stop();

 private:
  void run();
  bool serve_connection();
  void resync();
  void dispatch(std::string_view payload);
  void set_up(bool up);

  std::shared_ptr<storage::pg_store> store_;
  targets to_;
  std::chrono::milliseconds resync_;
  std::shared_ptr<store_status> status_;
  std::shared_ptr<metrics::registry> registry_;
  std::atomic<bool> stopping_{false};
  std::mutex wake_mu_;  ///< with `wake_`: ends a reconnect backoff early on stop()
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace ib::actors
