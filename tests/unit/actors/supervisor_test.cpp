// The health supervisor and provider actor with real threads and a real loopback socket (the
// upstream here is a listener that accepts and never answers: an external provider, stalled).
#include <chrono>
#include <memory>
#include <thread>

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
      held_.push_back(std::move(s));  // read nothing, answer nothing
      accept();
    });
  }

  std::shared_ptr<upstream_call> make_call(caf::scoped_actor& self, std::uint32_t attempt) {
    auto req = providers::parse_chat_request(
        R"({"model":"ib/balanced","messages":[{"role":"user","content":"hi"}]})");
    EXPECT_TRUE(req);
    auto call = std::make_shared<upstream_call>();
    call->attempt = attempt;
    call->request = std::make_shared<const providers::chat_request>(std::move(*req));
    call->upstream_model = "gpt-4o-mini";
    call->api_key = "sk-test";
    call->deadline = std::chrono::steady_clock::now() + 30s;
    call->reply_to = caf::actor{self.ptr()};
    call->control = std::make_shared<call_control>();
    return call;
  }

  static std::shared_ptr<const user_entry> user(std::string id) {
    auto u = std::make_shared<user_entry>();
    u->id = std::move(id);
    return u;
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
  std::vector<net::ip::tcp::socket> held_;
  std::thread io_thread_;
  std::shared_ptr<config::provider_config> provider_;
  std::shared_ptr<health_slot> slot_;
  caf::actor supervisor_;
};

TEST_F(SupervisorTest, InFlightCallFallsBackWhenItsProviderActorDiesAndTheActorIsRestarted) {
  caf::scoped_actor self{sys_};
  auto first = slot_->load()->provider;
  ASSERT_TRUE(first);
  self->send(first, call_atom::value, make_call(self, 7));
  // The call is upstream (connected, waiting for a first byte that never comes).
  ASSERT_TRUE(eventually([&] { return !held_.empty(); })) << "no upstream connection";
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send_exit(first, caf::exit_reason::kill);
  bool got = false;
  self->receive(
      [&](reply_atom, std::shared_ptr<attempt_result>& r) {
        got = true;
        EXPECT_EQ(r->attempt, 7u);
        EXPECT_EQ(r->result, outcome::provider_down);
      },
      caf::after(5s) >> [] { ADD_FAILURE() << "the in-flight call hung"; });
  ASSERT_TRUE(got);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  // The supervisor noticed and published a new provider actor that works.
  ASSERT_TRUE(eventually([&] { return slot_->load()->provider != first; }));
  EXPECT_EQ(slot_->load()->restarts, 1u);
  auto second = slot_->load()->provider;
  auto call = make_call(self, 8);
  self->send(second, call_atom::value, call);
  ASSERT_TRUE(eventually([&] { return held_.size() == 2; }));
  call->control->cancel();
  self->receive(
      [&](reply_atom, std::shared_ptr<attempt_result>& r) {
        EXPECT_EQ(r->attempt, 8u);
        EXPECT_EQ(r->result, outcome::cancelled);
      },
      caf::after(5s) >> [] { ADD_FAILURE() << "cancel did not end the call"; });
}

TEST_F(SupervisorTest, HalfOpenAdmitsExactlyOneConcurrentProbe) {
  caf::scoped_actor self{sys_};
  for (int i = 0; i < 2; ++i) {
    auto rep = std::make_shared<attempt_report>();
    rep->user = user("usr_1");
    rep->result = outcome::server_error;
    rep->admitted_at = std::chrono::steady_clock::now();
    self->send(supervisor_, report_atom::value, rep);
  }
  ASSERT_TRUE(eventually([&] { return slot_->load()->state == breaker_state::open; }));
  auto retry_at = slot_->load()->retry_at;
  while (std::chrono::steady_clock::now() < retry_at) {
    std::this_thread::yield();
  }
  // Many requesters ask at once; the supervisor is the one place that decides.
  int admitted = 0;
  int refused = 0;
  for (int i = 0; i < 50; ++i) {
    self->request(supervisor_, 2s, admit_atom::value)
        .receive([&](bool ok) { ok ? ++admitted : ++refused; },
                 [&](caf::error&) { ADD_FAILURE() << "admit failed"; });
  }
  EXPECT_EQ(admitted, 1);
  EXPECT_EQ(refused, 49);
  auto rep = std::make_shared<attempt_report>();
  rep->user = user("usr_1");
  rep->result = outcome::success;
  rep->probe = true;
  rep->admitted_at = std::chrono::steady_clock::now();
  self->send(supervisor_, report_atom::value, rep);
  ASSERT_TRUE(eventually([&] { return slot_->load()->state == breaker_state::closed; }));
}

TEST_F(SupervisorTest, RateLimitCooldownIsPerUser) {
  caf::scoped_actor self{sys_};
  auto rep = std::make_shared<attempt_report>();
  rep->user = user("usr_a");
  rep->result = outcome::rate_limited;
  rep->retry_after = "7";
  rep->admitted_at = std::chrono::steady_clock::now();
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

}  // namespace
}  // namespace ib::actors
