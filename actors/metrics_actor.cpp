#include "actors/metrics_actor.hpp"

#include <ctime>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "core/request_record.hpp"
#include "metrics/registry.hpp"
#include "storage/key_store.hpp"

namespace ib::actors {

namespace {

constexpr std::size_t max_batch = 256;
constexpr auto flush_interval = std::chrono::milliseconds(100);

// -- the request log writer: the one place that commits records (detached: it fsyncs) ------------

struct writer_state {
  std::shared_ptr<storage::key_store> store;
  std::shared_ptr<metrics::registry> reg;
  config::request_log_config log_cfg;
  static inline const char* name = "request_log_writer";
};

using writer_actor_t = log_writer_handle::stateful_pointer<writer_state>;

std::string list_body(const storage::key_store::page& page) {
  return to_list_json(page.records_json, page.has_more);
}

log_writer_handle::behavior_type request_log_writer(writer_actor_t self,
                                                    std::shared_ptr<storage::key_store> store,
                                                    std::shared_ptr<metrics::registry> reg,
                                                    config::request_log_config log_cfg) {
  self->state.store = std::move(store);
  self->state.reg = std::move(reg);
  self->state.log_cfg = log_cfg;
  return {
      [self](append_atom, std::shared_ptr<record_batch>& batch) {
        auto& st = self->state;
        auto rc = st.store->append_requests(*batch, st.log_cfg.max_records_per_user,
                                            st.log_cfg.max_age_seconds(), std::time(nullptr));
        st.reg->observe_store_write("append_requests", rc.has_value());
        if (!rc) {
          // The batch is one transaction: none of its records was written.
          st.reg->add_records_dropped(batch->size());
          log(log_level::error, "request log: a batch failed to commit",
              {{"error", rc.error().message}, {"records_dropped", batch->size()}});
        }
      },
      [self](listreq_atom, const std::string& user_id, std::uint64_t limit,
             const std::string& before) -> caf::result<std::string> {
        try {
          auto page = self->state.store->list_requests(user_id, limit, before);
          if (!page) {
            return make_error(std::move(page).error());
          }
          return list_body(*page);
        } catch (const std::exception&) {
          // The handler boundary: a failed read must not kill the writer.
          return make_error(errc::internal, "the request log failed");
        }
      },
      [self](stop_atom) { self->quit(); },
  };
}

// -- the metrics actor: registry updates and batching (scheduled: cheap per-request messages) -----

struct metrics_state {
  std::shared_ptr<metrics::registry> reg;
  log_writer_handle writer;
  std::shared_ptr<record_batch> batch = std::make_shared<record_batch>();
  bool flush_scheduled = false;
  static inline const char* name = "metrics_actor";
};

using metrics_actor_t = metrics_actor_handle::stateful_pointer<metrics_state>;

void flush(metrics_actor_t self) {
  auto& st = self->state;
  if (st.batch->empty()) {
    return;
  }
  self->send(st.writer, append_atom::value, std::move(st.batch));
  st.batch = std::make_shared<record_batch>();
  st.batch->reserve(max_batch);
}

metrics_actor_handle::behavior_type metrics_actor(metrics_actor_t self,
                                                  std::shared_ptr<metrics::registry> reg,
                                                  log_writer_handle writer) {
  auto& st = self->state;
  st.reg = std::move(reg);
  st.writer = std::move(writer);
  st.batch->reserve(max_batch);
  // On shutdown: hand the last batch to the writer, then stop it (in that order: both are
  // ordinary messages from this actor).
  self->set_exit_handler([self](const caf::exit_msg& em) {
    flush(self);
    self->send(self->state.writer, stop_atom::value);
    self->quit(em.reason);
  });
  return {
      [self](record_atom, std::shared_ptr<request_record>& r) {
        auto& st = self->state;
        st.reg->observe_request(*r);
        // The access line: formatted here, written by the logger's own thread (never blocks).
        process_logger().access(*r);
        if (r->user_id.empty()) {
          return;
        }
        st.batch->push_back(std::move(*r));
        if (st.batch->size() >= max_batch) {
          flush(self);
        } else if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->delayed_send(self, flush_interval, flush_atom::value);
        }
      },
      [self](flush_atom) {
        self->state.flush_scheduled = false;
        flush(self);
      },
      [self](listreq_atom a, std::string& user_id, std::uint64_t limit, std::string& before) {
        // The writer handles messages in order: the batch lands before the listing is read, so a
        // client sees its own finished requests. The writer answers the asker directly.
        flush(self);
        return self->delegate(self->state.writer, a, std::move(user_id), limit, std::move(before));
      },
      [self](writer_atom, log_writer_handle& writer) {
        // The supervisor restarted the writer: batches sent to the old one died with it.
        self->state.writer = std::move(writer);
      },
  };
}

// -- the metrics supervisor: the stable handle that callers use -----------------------------------

// Design: request actors (gateway_deps::metrics) and the API hold the supervisor, never the
// metrics actor, so a restart needs no caller to learn a new handle. That costs one extra
// scheduled hop per finished request (a few microseconds, see docs/toolchain-notes.md); a
// published handle would save it but would put an atomic load and a reload protocol into every
// caller. The supervisor owns both children (monitored, not linked, so a death is noticed rather
// than propagated): a dead metrics actor is replaced by one that uses the current writer (its
// unflushed batch is lost: metadata only); a dead writer is replaced and the metrics actor told.
// A listing that dies with either comes back to its asker from CAF as
// `sec::request_receiver_down` (bounced from the dead actor's mailbox).

struct metrics_supervisor_state {
  std::shared_ptr<metrics::registry> reg;
  std::shared_ptr<storage::key_store> store;
  config::request_log_config log_cfg;
  log_writer_handle writer;
  metrics_actor_handle child;
  std::uint64_t restarts = 0;
  static inline const char* name = "metrics_supervisor";
};

using metrics_supervisor_t = metrics_supervisor_handle::stateful_pointer<metrics_supervisor_state>;

void spawn_writer(metrics_supervisor_t self) {
  auto& st = self->state;
  st.writer =
      self->spawn<caf::detached + caf::monitored>(request_log_writer, st.store, st.reg, st.log_cfg);
}

void spawn_child(metrics_supervisor_t self) {
  auto& st = self->state;
  st.child = self->spawn<caf::monitored>(metrics_actor, st.reg, st.writer);
}

metrics_supervisor_handle::behavior_type metrics_supervisor(
    metrics_supervisor_t self, std::shared_ptr<metrics::registry> reg,
    std::shared_ptr<storage::key_store> store, config::request_log_config log_cfg) {
  auto& st = self->state;
  st.reg = std::move(reg);
  st.store = std::move(store);
  st.log_cfg = log_cfg;
  spawn_writer(self);
  spawn_child(self);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source == st.writer.address()) {
      ++st.restarts;
      log(log_level::error, "request log writer died; restarting it",
          {{"reason", caf::to_string(dm.reason)}});
      spawn_writer(self);
      self->send(st.child, writer_atom::value, st.writer);
    } else if (dm.source == st.child.address()) {
      ++st.restarts;
      log(log_level::error, "metrics actor died; restarting it",
          {{"reason", caf::to_string(dm.reason)}});
      spawn_child(self);
    }
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    // The metrics actor flushes its batch and stops the writer on its exit (see above).
    self->send_exit(self->state.child, em.reason);
    self->quit(em.reason);
  });
  return {
      [self](record_atom a, std::shared_ptr<request_record>& r) {
        self->send(self->state.child, a, std::move(r));
      },
      [self](listreq_atom a, std::string& user_id, std::uint64_t limit, std::string& before) {
        return self->delegate(self->state.child, a, std::move(user_id), limit, std::move(before));
      },
      [self](child_atom) { return self->state.child; },
      [self](writer_atom) { return self->state.writer; },
  };
}

}  // namespace

metrics_supervisor_handle spawn_metrics_actor(caf::actor_system& sys,
                                              std::shared_ptr<metrics::registry> reg,
                                              std::shared_ptr<storage::key_store> store,
                                              config::request_log_config log_cfg) {
  return sys.spawn(metrics_supervisor, std::move(reg), std::move(store), log_cfg);
}

}  // namespace ib::actors
