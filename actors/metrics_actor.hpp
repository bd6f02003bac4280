#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "config/config.hpp"

namespace ib::storage {
class key_store;
}
namespace ib::metrics {
class registry;
}

namespace ib::actors {

/// Spawns the metrics actor and its request-log writer. The metrics actor (scheduled: a message
/// per request stays cheap) feeds each finished request's record into the Prometheus registry and
/// batches the records; the writer (detached: it fsyncs) commits each batch to the LMDB request
/// log in one synced transaction (per ~100 ms or 256 records). Messages:
/// `(record_atom, shared_ptr<request_record>)`, `(listreq_atom, shared_ptr<list_requests_cmd>)`
/// (flushes the batch first, so a client sees its own finished requests).
caf::actor spawn_metrics_actor(caf::actor_system& sys, std::shared_ptr<metrics::registry> reg,
                               std::shared_ptr<storage::key_store> store,
                               config::request_log_config log_cfg);

}  // namespace ib::actors
