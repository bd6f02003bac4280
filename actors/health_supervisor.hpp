#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/cluster.hpp"
#include "actors/messages.hpp"
#include "config/config.hpp"
#include "core/breaker.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::metrics {
class registry;
}

namespace ib::actors {

struct health_slot;

/// What a health supervisor needs: its provider, the breaker and cooldown settings, and what it
/// hands on to the provider actors it spawns (see `provider_options`).
struct supervisor_options {
  std::shared_ptr<const config::provider_config> provider;
  breaker_config breaker;
  cooldown_config cooldown;
  boost::asio::io_context* io = nullptr;             ///< must outlive the actor system
  std::size_t max_upstream_body = 32 * 1024 * 1024;  ///< bytes
  std::string ca_file;                               ///< extra CA bundle for upstream TLS
  std::shared_ptr<metrics::registry> metrics;        ///< circuit-state gauge; may be null (tests)
  /// Several nodes (design §10): the cluster bus; null on a single node. With it, transitions
  /// and 429 cooldowns are published to the other nodes, and the half-open probe goes only once
  /// this node holds the cluster-wide probe lease (others skip the provider meanwhile).
  cluster_bus_handle bus;
  /// How long a won probe lease lasts before the probe goes (ms); extended to the breaker's
  /// `probe_timeout` when it does.
  std::chrono::milliseconds probe_lease{2000};
};

/// Spawns the health supervisor of one provider (design §5): it owns the provider's breaker and
/// the per-(user, provider) 429 cooldowns, spawns and monitors the provider actor (restarting it
/// if it dies), logs breaker transitions (one line each), and publishes a `health_snapshot` in
/// `slot` after every change (its handlers run on the actor's thread; readers load the snapshot
/// from any thread). Protocol: `health_supervisor_handle` in actors/messages.hpp:
/// `(admit_atom) -> bool` (the half-open probe slot), `(report_atom, attempt_report)`, and with
/// `opts.bus` the cluster messages (`remote_atom`, `lease_atom`; see messages.hpp). Sets
/// `slot->supervisor` and the first snapshot (with the first provider actor) before it returns.
health_supervisor_handle spawn_health_supervisor(caf::actor_system& sys, supervisor_options opts,
                                                 std::shared_ptr<health_slot> slot);

}  // namespace ib::actors
