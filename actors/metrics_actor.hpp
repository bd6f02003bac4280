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

/// Spawns the metrics actor and its request-log writer under their supervisor and returns the
/// supervisor: the stable handle to send to. The metrics actor (scheduled: a message per request
/// stays cheap) feeds each finished request's record into the Prometheus registry and batches
/// the records; the writer (detached: it fsyncs) commits each batch to the LMDB request log in
/// one synced transaction (per ~100 ms or 256 records). Messages:
/// `(record_atom, shared_ptr<request_record>)`, `(listreq_atom, shared_ptr<list_requests_cmd>)`
/// (flushes the batch first, so a client sees its own finished requests). If either child dies
/// it is restarted (a new metrics actor keeps the writer; a new writer is handed to the metrics
/// actor); records and listings that die with it are lost, and a listing's `done` is not called
/// by it (wrap it with `answer_if_dropped`). `(child_atom) -> caf::actor` and
/// `(writer_atom) -> caf::actor` return the current children (for tests). An exit sent to the
/// supervisor stops the metrics actor, which flushes its batch and then stops the writer.
caf::actor spawn_metrics_actor(caf::actor_system& sys, std::shared_ptr<metrics::registry> reg,
                               std::shared_ptr<storage::key_store> store,
                               config::request_log_config log_cfg);

}  // namespace ib::actors
