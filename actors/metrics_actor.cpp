#include "actors/metrics_actor.hpp"

#include <ctime>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "metrics/registry.hpp"
#include "storage/key_store.hpp"

namespace ib::actors {

namespace {

constexpr std::size_t max_batch = 256;
constexpr auto flush_interval = std::chrono::milliseconds(100);

using record_batch = std::vector<request_record>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

// -- the request log writer: the one place that commits records (detached: it fsyncs) ------------

struct writer_state {
  std::shared_ptr<storage::key_store> store;
  config::request_log_config log_cfg;
  static inline const char* name = "request_log_writer";
};

using writer_actor_t = caf::stateful_actor<writer_state>;

std::string list_body(const storage::key_store::page& page) {
  std::string out = R"({"object":"list","data":[)";
  bool first = true;
  for (const auto& r : page.records_json) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out += r;
  }
  out += R"(],"has_more":)";
  out += page.has_more ? "true" : "false";
  out += "}";
  return out;
}

caf::behavior request_log_writer(writer_actor_t* self, std::shared_ptr<storage::key_store> store,
                                 config::request_log_config log_cfg) {
  self->state.store = std::move(store);
  self->state.log_cfg = log_cfg;
  return {
      [self](append_atom, std::shared_ptr<record_batch>& batch) {
        auto& st = self->state;
        auto rc = st.store->append_requests(
            *batch, st.log_cfg.max_records_per_user,
            static_cast<std::int64_t>(st.log_cfg.max_age_days) * 86400, std::time(nullptr));
        if (!rc) {
          log_line("request log: " + rc.error().message + " (" + std::to_string(batch->size())
                   + " records dropped)");
        }
      },
      [self](listreq_atom, std::shared_ptr<list_requests_cmd>& cmd) {
        auto page = self->state.store->list_requests(cmd->user_id, cmd->limit, cmd->before);
        if (!page) {
          cmd->done(std::move(page).error());
          return;
        }
        cmd->done(list_body(*page));
      },
      [self](stop_atom) { self->quit(); },
  };
}

// -- the metrics actor: registry updates and batching (scheduled: cheap per-request messages) -----

struct metrics_state {
  std::shared_ptr<metrics::registry> reg;
  caf::actor writer;
  std::shared_ptr<record_batch> batch = std::make_shared<record_batch>();
  bool flush_scheduled = false;
  static inline const char* name = "metrics_actor";
};

using metrics_actor_t = caf::stateful_actor<metrics_state>;

void flush(metrics_actor_t* self) {
  auto& st = self->state;
  if (st.batch->empty()) {
    return;
  }
  self->send(st.writer, append_atom::value, std::move(st.batch));
  st.batch = std::make_shared<record_batch>();
  st.batch->reserve(max_batch);
}

caf::behavior metrics_actor(metrics_actor_t* self, std::shared_ptr<metrics::registry> reg,
                            caf::actor writer) {
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
      [self](listreq_atom, std::shared_ptr<list_requests_cmd>& cmd) {
        // The writer handles messages in order: the batch lands before the listing is read, so a
        // client sees its own finished requests.
        flush(self);
        self->send(self->state.writer, listreq_atom::value, std::move(cmd));
      },
  };
}

}  // namespace

caf::actor spawn_metrics_actor(caf::actor_system& sys, std::shared_ptr<metrics::registry> reg,
                               std::shared_ptr<storage::key_store> store,
                               config::request_log_config log_cfg) {
  auto writer = sys.spawn<caf::detached>(request_log_writer, std::move(store), log_cfg);
  return sys.spawn(metrics_actor, std::move(reg), std::move(writer));
}

}  // namespace ib::actors
