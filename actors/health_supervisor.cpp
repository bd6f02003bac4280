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
  /// A tick is on its way. The supervisor ticks (every second) only while something changes by
  /// the clock: a cooldown to prune, an open breaker that turns half-open. A healthy idle
  /// provider costs no wake-up.
  bool tick_armed = false;

  // Several nodes (design §10); unused without a cluster bus.
  /// The current open period's retry time as the cluster knows it (Unix ms; 0 when closed). The
  /// probe lease is asked for this very period, so a late ask for an old one always loses.
  std::int64_t epoch_ms = 0;
  /// `local`: decide alone (closed, or PostgreSQL away); `waiting`: open, and this node does not
  /// hold the probe lease (requests skip the provider, never asking); `held`: it does.
  enum class gate : std::uint8_t { local, waiting, held } probe_gate = gate::local;
  steady_time lease_until{};  ///< held: when the lease lapses unless a probe went out
  bool probe_sent = false;    ///< held: the probe went out (its outcome will be published)
  /// This node's open period is being published: a replayed "closed" row (a resync read before
  /// our write) must not close the breaker meanwhile.
  bool publishing = false;

  static inline const char* name = "health_supervisor";
};

using supervisor_actor = health_supervisor_handle::stateful_pointer<supervisor_state>;

provider_options provider_options_of(const supervisor_options& o) {
  return provider_options{o.provider, io_handle{o.io}, o.max_upstream_body, o.ca_file};
}

/// True while requests must skip the provider without asking: the breaker is open and another
/// node may hold the probe lease (design §10).
bool gated(const supervisor_state& st, steady_time now) {
  return st.probe_gate == supervisor_state::gate::waiting
         && st.b.state(now) != breaker_state::closed;
}

/// The state requests are shown at `now` (the breaker's, or open while gated).
breaker_state shown_state(const supervisor_state& st, steady_time now) {
  return gated(st, now) ? breaker_state::open : st.b.state(now);
}

/// Arms the next tick if something changes by the clock: a cooldown to prune, or a breaker that
/// is not closed (open turns half-open at its retry time; shown states follow). `now`: the
/// caller's clock reading.
void arm_tick(supervisor_actor self, steady_time now) {
  auto& st = self->state;
  if (st.tick_armed) {
    return;
  }
  if (st.cooldowns.size() == 0 && st.b.state(now) == breaker_state::closed
      && st.published_state == breaker_state::closed) {
    return;
  }
  st.tick_armed = true;
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
}

void publish(supervisor_actor self) {
  auto& st = self->state;
  auto now = steady::now();
  auto snap = std::make_shared<health_snapshot>();
  snap->state = shown_state(st, now);
  // Gated: open with no retry time, so requests skip the provider at once instead of asking
  // for a probe slot.
  snap->retry_at = gated(st, now) ? steady_time::max() : st.b.retry_at();
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
  // Every change that may need the clock (a cooldown started, a breaker opened) is published.
  arm_tick(self, now);
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

// -- several nodes (design §10)
// ---------------------------------------------------------------------

bool clustered(supervisor_actor self) {
  return self->state.opts.bus != nullptr;
}

/// `unix_ms` (another node's wall clock, assumed synchronised) on this node's monotonic clock.
steady_time steady_of(std::int64_t unix_ms) {
  return steady::now() + std::chrono::milliseconds(unix_ms - wall_ms_now());
}

std::int64_t wall_of(steady_time t) {
  return wall_ms_now()
         + std::chrono::duration_cast<std::chrono::milliseconds>(t - steady::now()).count();
}

/// How long the supervisor waits for the cluster bus (whose calls are bounded themselves).
constexpr auto bus_timeout = std::chrono::seconds(10);

void ask_for_lease(supervisor_actor self, std::int64_t epoch);

/// Asks for the probe lease of the open period `epoch` at `when` (at once if past).
void schedule_lease(supervisor_actor self, std::int64_t epoch, steady_time when) {
  auto delay = std::max(std::chrono::steady_clock::duration::zero(), when - steady::now());
  self->delayed_send(self, std::chrono::duration_cast<std::chrono::microseconds>(delay),
                     lease_atom::value, epoch);
}

/// PostgreSQL did not answer: this node decides alone until the next transition.
void go_local(supervisor_actor self) {
  self->state.probe_gate = supervisor_state::gate::local;
  publish(self);
}

/// Another node's open period stands (or was just published): open until then, skipping the
/// provider until this node wins the lease of that period.
void adopt_open(supervisor_actor self, std::int64_t retry_at_ms, std::int64_t next_cooldown_ms,
                std::string_view why) {
  auto& st = self->state;
  auto now = steady::now();
  const auto before = st.published_state;
  st.b.adopt_open(steady_of(retry_at_ms), std::chrono::milliseconds(next_cooldown_ms), now);
  st.epoch_ms = retry_at_ms;
  st.probe_gate = supervisor_state::gate::waiting;
  st.probe_sent = false;
  st.publishing = false;
  if (before != breaker_state::open) {
    log_transition(self, {before, breaker_state::open}, why);
  }
  publish(self);
  schedule_lease(self, retry_at_ms, steady_of(retry_at_ms));
}

void adopt_closed(supervisor_actor self, std::string_view why) {
  auto& st = self->state;
  const auto before = st.published_state;
  st.b.adopt_closed(steady::now());
  st.epoch_ms = 0;
  st.probe_gate = supervisor_state::gate::local;
  st.probe_sent = false;
  if (before != breaker_state::closed) {
    log_transition(self, {before, breaker_state::closed}, why);
  }
  publish(self);
}

/// The lease of `epoch` was lost: see what stands and act on it.
void lost_lease(supervisor_actor self, std::int64_t epoch, const cluster_verdict& v) {
  auto& st = self->state;
  if (!v.row_found) {
    go_local(self);
  } else if (!v.row_open) {
    adopt_closed(self, "another node's probe succeeded");
  } else if (v.retry_at_ms != epoch) {
    adopt_open(self, v.retry_at_ms, v.next_cooldown_ms, "another node's breaker");
  } else {
    // Another node holds this period's lease (or its retry time has not quite come here yet):
    // keep skipping, and ask again when that lease lapses, unless its outcome arrives first.
    st.probe_gate = supervisor_state::gate::waiting;
    publish(self);
    auto again =
        std::max(steady_of(v.probe_until_ms), steady_of(epoch)) + std::chrono::milliseconds(20);
    schedule_lease(self, epoch, again);
  }
}

void ask_for_lease(supervisor_actor self, std::int64_t epoch) {
  auto& st = self->state;
  self->request(st.opts.bus, bus_timeout, lease_atom::value, st.opts.provider->name, epoch,
                static_cast<std::int64_t>(st.b.current_cooldown().count()),
                static_cast<std::int64_t>(st.opts.probe_lease.count()))
      .then(
          [self, epoch](const cluster_verdict& v) {
            auto& st = self->state;
            if (epoch != st.epoch_ms || st.probe_gate != supervisor_state::gate::waiting) {
              return;  // superseded while asking
            }
            if (v.kind == cluster_verdict::done) {
              st.probe_gate = supervisor_state::gate::held;
              st.probe_sent = false;
              st.lease_until = steady::now() + st.opts.probe_lease;
              publish(self);
              // Unless a probe goes out in time, the lease lapses and is asked for again.
              schedule_lease(self, epoch, st.lease_until);
            } else if (v.kind == cluster_verdict::lost) {
              lost_lease(self, epoch, v);
            } else {
              go_local(self);
            }
          },
          [self, epoch](const caf::error&) {
            if (self->state.epoch_ms == epoch) {
              go_local(self);
            }
          });
}

/// This node's breaker opened (a trip, or a failed probe): publish the period, or adopt the one
/// another node published first.
void opened_here(supervisor_actor self) {
  auto& st = self->state;
  const std::int64_t epoch = wall_of(st.b.retry_at());
  st.epoch_ms = epoch;
  st.probe_gate = supervisor_state::gate::waiting;
  st.probe_sent = false;
  st.publishing = true;
  publish(self);
  self->request(st.opts.bus, bus_timeout, publish_atom::value, st.opts.provider->name, epoch,
                static_cast<std::int64_t>(st.b.current_cooldown().count()))
      .then(
          [self, epoch](const cluster_verdict& v) {
            auto& st = self->state;
            if (epoch != st.epoch_ms) {
              return;
            }
            st.publishing = false;
            if (v.kind == cluster_verdict::done) {
              schedule_lease(self, epoch, st.b.retry_at());
            } else if (v.kind == cluster_verdict::lost && v.row_found && v.row_open) {
              adopt_open(self, v.retry_at_ms, v.next_cooldown_ms, "another node's breaker");
            } else {
              go_local(self);
            }
          },
          [self, epoch](const caf::error&) {
            if (self->state.epoch_ms == epoch) {
              self->state.publishing = false;
              go_local(self);
            }
          });
}

/// The lease timer of `epoch`: ask for the lease, or give up a lease no probe used.
void on_lease_timer(supervisor_actor self, std::int64_t epoch) {
  auto& st = self->state;
  auto now = steady::now();
  if (epoch != st.epoch_ms || st.b.state(now) == breaker_state::closed) {
    return;
  }
  if (st.probe_gate == supervisor_state::gate::held) {
    if (st.probe_sent || now < st.lease_until) {
      return;  // the probe's outcome will decide
    }
    st.probe_gate = supervisor_state::gate::waiting;  // unused: let the cluster pick again
    publish(self);
  }
  if (st.probe_gate == supervisor_state::gate::waiting) {
    ask_for_lease(self, epoch);
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
  return {
      [self](admit_atom) -> bool {
        auto& st = self->state;
        auto now = steady::now();
        if (st.probe_gate == supervisor_state::gate::waiting) {
          return false;  // another node may be probing (an older snapshot let this one ask)
        }
        const bool probing = st.b.state(now) != breaker_state::closed;
        bool ok = st.b.admit(now);
        if (ok && probing && st.probe_gate == supervisor_state::gate::held) {
          // The probe goes: keep the lease for as long as it may take.
          st.probe_sent = true;
          st.lease_until = now + st.opts.breaker.probe_timeout;
          self->send(
              st.opts.bus, extend_atom::value, st.opts.provider->name, st.epoch_ms,
              wall_ms_now() + static_cast<std::int64_t>(st.opts.breaker.probe_timeout.count()));
        }
        auto after = shown_state(st, now);
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
          if (clustered(self)) {
            self->send(st.opts.bus, cooldown_atom::value, st.opts.provider->name, rep.user->id,
                       wall_ms_now() + static_cast<std::int64_t>(d.count()));
          }
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
            if (clustered(self) && t->to == breaker_state::open) {
              opened_here(self);
            } else if (clustered(self) && t->to == breaker_state::closed) {
              st.epoch_ms = 0;
              st.probe_gate = supervisor_state::gate::local;
              self->send(st.opts.bus, closed_atom::value, st.opts.provider->name);
            }
          }
        }
        if (changed || shown_state(st, now) != st.published_state) {
          publish(self);
        }
      },
      [self](tick_atom) {
        auto& st = self->state;
        st.tick_armed = false;
        auto now = steady::now();
        if (st.cooldowns.prune(now)) {
          st.cooldowns_dirty = true;
          publish(self);
        } else if (auto now_state = shown_state(st, now); now_state != st.published_state) {
          // open -> half-open by the clock: keep /readyz and metrics current.
          log_transition(self, {st.published_state, now_state}, "cooldown");
          publish(self);
        }
        arm_tick(self, now);
      },
      [self](remote_atom, bool open, std::int64_t retry_at_ms, std::int64_t next_cooldown_ms) {
        auto& st = self->state;
        if (open) {
          if (retry_at_ms != st.epoch_ms) {
            adopt_open(self, retry_at_ms, next_cooldown_ms, "another node's breaker");
          }
        } else if (!st.publishing && st.b.state(steady::now()) != breaker_state::closed) {
          adopt_closed(self, "another node's probe succeeded");
        }
      },
      [self](remote_atom, const std::string& user_id, std::int64_t until_ms) {
        auto& st = self->state;
        auto now = steady::now();
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(steady_of(until_ms) - now);
        if (d.count() <= 0) {
          return;
        }
        st.cooldowns.start(user_id, std::min(d, st.opts.cooldown.max_cooldown), now);
        st.cooldowns_dirty = true;
        publish(self);
      },
      [self](lease_atom, std::int64_t epoch) { on_lease_timer(self, epoch); },
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
