#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "config/config.hpp"

namespace ib::storage {
class store;
}
namespace ib::metrics {
class registry;
}

namespace ib::actors {

/// Spawns the metrics actor and its request-log writer under their supervisor and returns the
/// supervisor: the stable handle to send to. The metrics actor (scheduled: a message per request
/// stays cheap) feeds each finished request's record into the Prometheus registry, queues its
/// access line on the process logger (actors/log.hpp: formatted on this actor's thread, written
/// by the logger's thread, never blocking) and batches the records; the writer (detached: it
/// fsyncs) commits each batch to the LMDB request log in one synced transaction (per ~250 ms or
/// 256 records), enforcing `log_cfg`'s retention in it, and counts each commit in
/// `inferbridge_store_writes_total{op="append_requests"}` (a failed batch's records also in
/// `inferbridge_request_records_dropped_total`, and an error line in the log). Protocol:
/// `metrics_supervisor_handle` in actors/messages.hpp: `(record_atom, shared_ptr<request_record>)`
/// (a tell), and
/// `(listreq_atom, user_id, limit, before) -> std::string` (the JSON list body, answered by the
/// writer on its own thread, after the metrics actor's pending batch, so a client sees its own
/// finished requests; a storage failure is an "ib" error). If either child dies it is restarted
/// (a new metrics actor keeps the writer; a new writer is handed to the metrics actor); records
/// that die with it are lost, and a listing that dies with it comes back to its asker as
/// `sec::request_receiver_down` (see `is_dropped`). `(child_atom)` and `(writer_atom)` name the
/// current children (for tests). An exit sent to the supervisor stops the metrics actor, which
/// flushes its batch and then stops the writer.
///
/// `max_buffered` bounds the records waiting to be written, in two places: queued for the
/// writer (a store slower than the traffic: beyond the bound the metrics actor drops whole
/// batches), and kept by the writer while the store is unreachable (`errc::unavailable`:
/// PostgreSQL away; it retries every second and writes that backlog first when the store is
/// back, dropping the oldest beyond the bound). Every dropped record is counted in
/// `inferbridge_request_records_dropped_total`. 0: no bound on the queue, and nothing kept when
/// the store is unreachable (the batch is dropped, as any failed batch is).
metrics_supervisor_handle spawn_metrics_actor(caf::actor_system& sys,
                                              std::shared_ptr<metrics::registry> reg,
                                              std::shared_ptr<storage::store> store,
                                              config::request_log_config log_cfg,
                                              std::size_t max_buffered = 0);

}  // namespace ib::actors
