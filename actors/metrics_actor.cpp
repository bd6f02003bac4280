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

struct metrics_state {
  std::shared_ptr<metrics::registry> reg;
  std::shared_ptr<storage::key_store> store;
  config::request_log_config log_cfg;
  std::vector<request_record> batch;
  bool flush_scheduled = false;
  static inline const char* name = "metrics_actor";
};

using metrics_actor_t = caf::stateful_actor<metrics_state>;

void flush(metrics_actor_t* self) {
  auto& st = self->state;
  if (st.batch.empty()) {
    return;
  }
  auto rc = st.store->append_requests(st.batch, st.log_cfg.max_records_per_user,
                                      static_cast<std::int64_t>(st.log_cfg.max_age_days) * 86400,
                                      std::time(nullptr));
  if (!rc) {
    log_line("request log: " + rc.error().message + " (" + std::to_string(st.batch.size())
             + " records dropped)");
  }
  st.batch.clear();
}

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

caf::behavior metrics_actor(metrics_actor_t* self, std::shared_ptr<metrics::registry> reg,
                            std::shared_ptr<storage::key_store> store,
                            config::request_log_config log_cfg) {
  auto& st = self->state;
  st.reg = std::move(reg);
  st.store = std::move(store);
  st.log_cfg = log_cfg;
  // On shutdown, commit what is batched before going.
  self->set_exit_handler([self](const caf::exit_msg& em) {
    flush(self);
    self->quit(em.reason);
  });
  return {
      [self](record_atom, std::shared_ptr<request_record>& r) {
        auto& st = self->state;
        st.reg->observe_request(*r);
        if (r->user_id.empty()) {
          return;
        }
        st.batch.push_back(std::move(*r));
        if (st.batch.size() >= max_batch) {
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
        flush(self);
        auto page = self->state.store->list_requests(cmd->user_id, cmd->limit, cmd->before);
        if (!page) {
          cmd->done(std::move(page).error());
          return;
        }
        cmd->done(list_body(*page));
      },
  };
}

}  // namespace

caf::actor spawn_metrics_actor(caf::actor_system& sys, std::shared_ptr<metrics::registry> reg,
                               std::shared_ptr<storage::key_store> store,
                               config::request_log_config log_cfg) {
  return sys.spawn<caf::detached>(metrics_actor, std::move(reg), std::move(store), log_cfg);
}

}  // namespace ib::actors
