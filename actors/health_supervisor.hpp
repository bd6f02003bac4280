#pragma once

#include <memory>

#include <caf/fwd.hpp>

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

struct supervisor_options {
  std::shared_ptr<const config::provider_config> provider;
  breaker_config breaker;
  cooldown_config cooldown;
  boost::asio::io_context* io = nullptr;
  std::size_t max_upstream_body = 32 * 1024 * 1024;
  std::string ca_file;  ///< extra CA bundle for upstream TLS
  std::shared_ptr<metrics::registry> metrics;
};

/// Spawns the health supervisor of one provider (design §5): it owns the provider's breaker and
/// the per-(user, provider) 429 cooldowns, spawns and monitors the provider actor (restarting it
/// if it dies), logs breaker transitions (one line each), and publishes a `health_snapshot` in
/// `slot` after every change. Messages: `(admit_atom) -> bool` (the half-open probe slot),
/// `(report_atom, shared_ptr<attempt_report>)`.
caf::actor spawn_health_supervisor(caf::actor_system& sys, supervisor_options opts,
                                   std::shared_ptr<health_slot> slot);

}  // namespace ib::actors
