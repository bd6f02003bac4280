#include "actors/health_supervisor.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "actors/provider_actor.hpp"
#include "metrics/registry.hpp"

namespace ib::actors {

namespace {

using steady = std::chrono::steady_clock;
using cooldown_map = std::unordered_map<std::string, steady_time>;

struct supervisor_state {
  supervisor_options opts;
  std::shared_ptr<health_slot> slot;
  breaker b;
  cooldown_table cooldowns;
  provider_actor_handle provider;
  std::uint64_t restarts = 0;
  breaker_state published_state = breaker_state::closed;
  std::shared_ptr<const cooldown_map> published_cooldowns = std::make_shared<const cooldown_map>();
  bool cooldowns_dirty = false;

  static inline const char* name = "health_supervisor";
};

using supervisor_actor = health_supervisor_handle::stateful_pointer<supervisor_state>;

provider_options provider_options_of(const supervisor_options& o) {
  return provider_options{o.provider, io_handle{o.io}, o.max_upstream_body, o.ca_file};
}

void publish(supervisor_actor self) {
  auto& st = self->state;
  auto now = steady::now();
  auto snap = std::make_shared<health_snapshot>();
  snap->state = st.b.state(now);
  snap->retry_at = st.b.retry_at();
  snap->provider = st.provider;
  snap->restarts = st.restarts;
  if (st.cooldowns_dirty) {
    st.published_cooldowns = std::make_shared<const cooldown_map>(st.cooldowns.entries());
    st.cooldowns_dirty = false;
  }
  snap->cooldowns = st.published_cooldowns;
  st.published_state = snap->state;
  st.slot->snapshot.store(std::move(snap), std::memory_order_release);
  if (st.opts.metrics) {
    st.opts.metrics->set_circuit_state(st.opts.provider->name, st.published_state);
  }
}

void log_transition(supervisor_actor self, const breaker_transition& t, std::string_view why) {
  auto& st = self->state;
  // Opening is what an operator acts on (warn); closing and half-open are recoveries (info).
  const auto level = t.to == breaker_state::open ? log_level::warn : log_level::info;
  const std::string& provider = st.opts.provider->name;
  if (t.to == breaker_state::open) {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(st.b.retry_at() - steady::now());
    log(level, "breaker transition",
        {{"provider", provider},
         {"from", to_string(t.from)},
         {"to", to_string(t.to)},
         {"probe_in_ms", std::max<std::int64_t>(0, ms.count())},
         {"after", why}});
  } else {
    log(level, "breaker transition",
        {{"provider", provider},
         {"from", to_string(t.from)},
         {"to", to_string(t.to)},
         {"after", why}});
  }
}

void spawn_provider(supervisor_actor self) {
  auto& st = self->state;
  st.provider = self->spawn<caf::monitored>(provider_actor, provider_options_of(st.opts));
}

health_supervisor_handle::behavior_type supervisor(supervisor_actor self, supervisor_options opts,
                                                   std::shared_ptr<health_slot> slot,
                                                   provider_actor_handle first_provider) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.slot = std::move(slot);
  st.b = breaker{st.opts.breaker};
  st.provider = std::move(first_provider);
  self->monitor(st.provider);
  publish(self);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.provider.address()) {
      return;
    }
    ++st.restarts;
    log(log_level::error, "provider actor died; restarting it",
        {{"provider", st.opts.provider->name}, {"reason", caf::to_string(dm.reason)}});
    spawn_provider(self);
    publish(self);
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    // The provider is monitored, not linked: take it down with us.
    self->send_exit(self->state.provider, em.reason);
    self->quit(em.reason);
  });
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [self](admit_atom) -> bool {
        auto& st = self->state;
        auto now = steady::now();
        bool ok = st.b.admit(now);
        auto after = st.b.state(now);
        if (after != st.published_state) {
          log_transition(self, {st.published_state, after}, ok ? "cooldown (probe admitted)" : "");
          publish(self);
        }
        return ok;
      },
      [self](report_atom, const attempt_report& rep) {
        auto& st = self->state;
        auto now = steady::now();
        bool changed = false;
        if (rep.result == outcome::rate_limited) {
          // The request actor computed the end from the same headers (and told the client);
          // only a report without it (tests, older callers) is parsed here.
          std::chrono::milliseconds d{0};
          if (rep.cooldown_until != steady_time{}) {
            d = std::max(
                std::chrono::milliseconds{0},
                std::chrono::duration_cast<std::chrono::milliseconds>(rep.cooldown_until - now));
          } else if (rep.long_cooldown) {
            d = st.opts.cooldown.max_cooldown;
          } else {
            d = cooldown_for(
                parse_retry_after(rep.retry_after, rep.retry_after_ms,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count()),
                st.opts.cooldown);
          }
          st.cooldowns.start(rep.user->id, d, now);
          st.cooldowns_dirty = true;
          changed = true;
        }
        // In half-open only the probe's verdict counts; late results of requests admitted
        // before the trip must not close (or re-open) the breaker.
        auto current = st.b.state(now);
        if (current != breaker_state::half_open || rep.probe) {
          auto before_failures = st.b.consecutive_failures();
          if (auto t = st.b.record(rep.result, now, rep.admitted_at)) {
            std::string why;
            if (t->to == breaker_state::open && t->from == breaker_state::closed) {
              why = before_failures + 1 >= st.opts.breaker.consecutive_failures
                        ? std::to_string(before_failures + 1) + " consecutive failures"
                        : "failure ratio over the window";
            } else if (t->to == breaker_state::open) {
              why = "failed probe (" + std::string(reason_text(rep.result)) + ")";
            } else if (t->to == breaker_state::closed) {
              why = "successful probe";
            }
            log_transition(self, {st.published_state, t->to}, why);
            changed = true;
          }
        }
        if (changed || st.b.state(now) != st.published_state) {
          publish(self);
        }
      },
      [self](tick_atom) {
        auto& st = self->state;
        auto now = steady::now();
        if (st.cooldowns.prune(now)) {
          st.cooldowns_dirty = true;
          publish(self);
        } else if (auto now_state = st.b.state(now); now_state != st.published_state) {
          // open -> half-open by the clock: keep /readyz and metrics current.
          log_transition(self, {st.published_state, now_state}, "cooldown");
          publish(self);
        }
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
  };
}

}  // namespace

health_supervisor_handle spawn_health_supervisor(caf::actor_system& sys, supervisor_options opts,
                                                 std::shared_ptr<health_slot> slot) {
  // The first provider actor and snapshot exist before this returns, so requests never see an
  // empty slot; the supervisor monitors that actor and restarts it when it dies.
  auto provider = sys.spawn(provider_actor, provider_options_of(opts));
  auto first = std::make_shared<health_snapshot>();
  first->provider = provider;
  first->cooldowns = std::make_shared<const cooldown_map>();
  slot->snapshot.store(std::move(first), std::memory_order_release);
  auto sup = sys.spawn(supervisor, std::move(opts), slot, provider);
  slot->supervisor = sup;
  return sup;
}

}  // namespace ib::actors
