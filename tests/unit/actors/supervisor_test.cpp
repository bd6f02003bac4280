// The health supervisor and provider actor with real threads and a real loopback socket (the
// upstream here is a listener that accepts and never answers: an external provider, stalled).
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/health_supervisor.hpp"
#include "actors/messages.hpp"
#include "config/load.hpp"
#include "providers/chat_request.hpp"

namespace ib::actors {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

class SupervisorTest : public testing::Test {
 protected:
  SupervisorTest() : sys_(config()), acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    accept();
    io_thread_ = std::thread([this] { io_.run(); });
    auto cfg = config::load_default({});
    provider_ = std::make_shared<config::provider_config>(*cfg->find_provider("openai"));
    provider_->endpoint.tls = false;
    provider_->endpoint.host = "127.0.0.1";
    provider_->endpoint.port = acceptor_.local_endpoint().port();
    provider_->timeouts_ms.first_byte = 30s;
    slot_ = std::make_shared<health_slot>();
    slot_->provider = "openai";
    supervisor_options opts;
    opts.provider = provider_;
    opts.breaker.consecutive_failures = 2;
    opts.breaker.cooldown = 200ms;
    opts.io = &io_;
    supervisor_ = spawn_health_supervisor(sys_, opts, slot_);
  }

  ~SupervisorTest() override {
    caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
    sys_.await_all_actors_done();
    io_.stop();
    io_thread_.join();
  }

  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", std::size_t{2});
    return cfg;
  }

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, net::ip::tcp::socket s) {
      if (ec) {
        return;
      }
      {
        std::lock_guard lock{held_mutex_};
        held_.push_back(std::move(s));  // read nothing, answer nothing
      }
      held_changed_.notify_all();
      accept();
    });
  }

  static upstream_call make_call(std::uint32_t attempt) {
    auto req = providers::parse_chat_request(
        R"({"model":"ib/balanced","messages":[{"role":"user","content":"hi"}]})");
    EXPECT_TRUE(req);
    upstream_call call;
    call.attempt = attempt;
    call.request = std::make_shared<const providers::chat_request>(std::move(*req));
    call.upstream_model = "gpt-4o-mini";
    call.api_key = "sk-test";
    call.deadline = std::chrono::steady_clock::now() + 30s;
    call.control = std::make_shared<call_control>();
    return call;
  }

  static std::shared_ptr<const user_entry> user(std::string id) {
    auto u = std::make_shared<user_entry>();
    u->id = std::move(id);
    return u;
  }

  /// Waits (bounded) until the stalled upstream holds `n` connections. `held_` is written on the
  /// I/O thread, so it is only touched under `held_mutex_`.
  bool wait_for_connections(std::size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock{held_mutex_};
    return held_changed_.wait_for(lock, limit, [&] { return held_.size() >= n; });
  }

  std::size_t connections() {
    std::lock_guard lock{held_mutex_};
    return held_.size();
  }

  template <class Pred>
  bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) {
        return true;
      }
      std::this_thread::yield();
    }
    return pred();
  }

  caf::actor_system sys_;
  net::io_context io_;
  net::ip::tcp::acceptor acceptor_;
  std::mutex held_mutex_;
  std::condition_variable held_changed_;
  std::vector<net::ip::tcp::socket> held_;  // guarded by held_mutex_
  std::thread io_thread_;
  std::shared_ptr<config::provider_config> provider_;
  std::shared_ptr<health_slot> slot_;
  health_supervisor_handle supervisor_;
};

TEST_F(SupervisorTest, InFlightCallFallsBackWhenItsProviderActorDiesAndTheActorIsRestarted) {
  caf::scoped_actor self{sys_};
  auto first = slot_->load()->provider;
  ASSERT_TRUE(first);
  auto pending = self->request(first, 5s, call_atom::value, make_call(7));
  // The call is upstream (connected, waiting for a first byte that never comes).
  ASSERT_TRUE(wait_for_connections(1)) << "no upstream connection";
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  bool got = false;
  // The call was taken: its response is the attempt's result (provider_down), not a bounce.
  pending.receive(
      [&](attempt_result& r) {
        got = true;
        EXPECT_EQ(r.attempt, 7u);
        EXPECT_EQ(r.result, outcome::provider_down);
      },
      [](caf::error& e) { ADD_FAILURE() << "the in-flight call: " << caf::to_string(e); });
  ASSERT_TRUE(got);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  // The supervisor noticed and published a new provider actor that works.
  ASSERT_TRUE(eventually([&] { return slot_->load()->provider != first; }));
  EXPECT_EQ(slot_->load()->restarts, 1u);
  auto second = slot_->load()->provider;
  auto call = make_call(8);
  auto control = call.control;
  auto second_pending = self->request(second, 5s, call_atom::value, std::move(call));
  ASSERT_TRUE(wait_for_connections(2)) << "the restarted provider actor did not connect";
  EXPECT_EQ(connections(), 2u);
  control->cancel();
  second_pending.receive(
      [&](attempt_result& r) {
        EXPECT_EQ(r.attempt, 8u);
        EXPECT_EQ(r.result, outcome::cancelled);
      },
      [](caf::error& e) { ADD_FAILURE() << "cancel did not end the call: " << caf::to_string(e); });
}

TEST_F(SupervisorTest, HalfOpenAdmitsExactlyOneOfManyConcurrentProbes) {
  caf::scoped_actor self{sys_};
  for (int i = 0; i < 2; ++i) {
    attempt_report rep;
    rep.user = user("usr_1");
    rep.result = outcome::server_error;
    rep.admitted_at = std::chrono::steady_clock::now();
    self->send(supervisor_, report_atom::value, rep);
  }
  ASSERT_TRUE(eventually([&] { return slot_->load()->state == breaker_state::open; }));
  // Waiting for a point in time (the end of the cooldown), not for another thread.
  std::this_thread::sleep_until(slot_->load()->retry_at);

  // Many request attempts ask for the probe slot at the same time, each from its own actor on its
  // own thread, released together by a latch: their admit requests race into the supervisor's
  // mailbox, and the supervisor is the one place that decides.
  enum class answer { admitted, refused, failed };
  constexpr int requesters = 12;
  std::latch start{requesters};
  std::vector<std::promise<answer>> answers(requesters);
  std::vector<std::future<answer>> results;
  for (auto& p : answers) {
    results.push_back(p.get_future());
  }
  {
    std::vector<std::jthread> threads;
    for (auto& p : answers) {
      threads.emplace_back([this, &start, &p] {
        caf::scoped_actor requester{sys_};
        start.arrive_and_wait();
        requester->request(supervisor_, 2s, admit_atom::value)
            .receive([&](bool ok) { p.set_value(ok ? answer::admitted : answer::refused); },
                     [&](caf::error&) { p.set_value(answer::failed); });
      });
    }
    // The answers arrive as values through promises; every wait is bounded (the request itself
    // times out after 2 s, so the threads always end and are joined here).
    auto deadline = std::chrono::steady_clock::now() + 5s;
    int admitted = 0;
    int refused = 0;
    int failed = 0;
    for (auto& f : results) {
      if (f.wait_until(deadline) != std::future_status::ready) {
        ADD_FAILURE() << "a requester got no answer";
        continue;
      }
      switch (f.get()) {
        case answer::admitted:
          ++admitted;
          break;
        case answer::refused:
          ++refused;
          break;
        case answer::failed:
          ++failed;
          break;
      }
    }
    EXPECT_EQ(admitted, 1) << "the half-open breaker must admit exactly one probe";
    EXPECT_EQ(refused, requesters - 1);
    EXPECT_EQ(failed, 0);
  }
  EXPECT_TRUE(eventually([&] { return slot_->load()->state == breaker_state::half_open; }));

  attempt_report rep;
  rep.user = user("usr_1");
  rep.result = outcome::success;
  rep.probe = true;
  rep.admitted_at = std::chrono::steady_clock::now();
  self->send(supervisor_, report_atom::value, rep);
  ASSERT_TRUE(eventually([&] { return slot_->load()->state == breaker_state::closed; }));
}

TEST_F(SupervisorTest, RateLimitCooldownIsPerUser) {
  caf::scoped_actor self{sys_};
  attempt_report rep;
  rep.user = user("usr_a");
  rep.result = outcome::rate_limited;
  rep.retry_after = "7";
  rep.admitted_at = std::chrono::steady_clock::now();
  self->send(supervisor_, report_atom::value, rep);
  ASSERT_TRUE(eventually([&] {
    auto c = slot_->load()->cooldowns;
    return c && c->contains("usr_a");
  }));
  auto snap = slot_->load();
  auto left = snap->cooldowns->at("usr_a") - std::chrono::steady_clock::now();
  EXPECT_GT(left, 6s);
  EXPECT_LE(left, 7s);
  EXPECT_FALSE(snap->cooldowns->contains("usr_b"));
  EXPECT_EQ(snap->state, breaker_state::closed);
}

// The supervisor ticks only while something changes by the clock (arm_tick): a cooldown that
// starts while it sleeps must still be pruned once it ends, and the snapshot published again.
TEST_F(SupervisorTest, AnEndedCooldownLeavesThePublishedSnapshot) {
  caf::scoped_actor self{sys_};
  attempt_report rep;
  rep.user = user("usr_a");
  rep.result = outcome::rate_limited;
  rep.cooldown_until = std::chrono::steady_clock::now() + 300ms;
  rep.admitted_at = std::chrono::steady_clock::now();
  self->send(supervisor_, report_atom::value, rep);
  ASSERT_TRUE(eventually([&] {
    auto c = slot_->load()->cooldowns;
    return c && c->contains("usr_a");
  }));
  // Pruned at the first tick after its end (ticks are 1 s apart).
  EXPECT_TRUE(eventually([&] { return slot_->load()->cooldowns->empty(); }, 5s));
  EXPECT_EQ(slot_->load()->state, breaker_state::closed);
}

}  // namespace
}  // namespace ib::actors
