// The provider actor's side of the call protocol (actors/messages.hpp, `upstream_call`): a call
// is answered at once, with nothing when the exchange started or with an "ib" error when the
// provider cannot take it; and the mapping of the client's wire failures to attempt outcomes.
// CAF's deterministic scheduler drives the actors; the one exchange that really starts runs on
// an io_context polled by the test thread, within a bounded wait.
#include "actors/provider_actor.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/messages.hpp"
#include "config/load.hpp"
#include "core/error.hpp"
#include "http/client.hpp"
#include "providers/chat_request.hpp"

namespace ib::actors {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using http::exchange_failure;

// -- the mappings ---------------------------------------------------------------------------------

TEST(ProviderOutcome, EveryExchangeFailureHasItsOutcome) {
  const std::vector<std::pair<exchange_failure, outcome>> table = {
      {exchange_failure::none, outcome::success},
      {exchange_failure::connect_error, outcome::connect_error},
      {exchange_failure::tls_error, outcome::connect_error},
      {exchange_failure::connect_timeout, outcome::connect_timeout},
      {exchange_failure::reset, outcome::reset},
      {exchange_failure::first_byte_timeout, outcome::first_byte_timeout},
      {exchange_failure::idle_timeout, outcome::total_timeout},
      {exchange_failure::total_timeout, outcome::total_timeout},
      {exchange_failure::deadline, outcome::deadline},
      {exchange_failure::body_too_large, outcome::bad_response},
      {exchange_failure::bad_response, outcome::bad_response},
      {exchange_failure::cancelled, outcome::cancelled},
      {exchange_failure::pool_closed, outcome::provider_down},
  };
  // The table covers every value of the enum, in order.
  ASSERT_EQ(table.size(), static_cast<std::size_t>(exchange_failure::pool_closed) + 1);
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& [failure, expected] = table[i];
    EXPECT_EQ(static_cast<std::size_t>(failure), i);
    EXPECT_EQ(outcome_of(failure), expected) << http::to_string(failure);
  }
}

TEST(ProviderOutcome, RefusedCallIsUnsupportedOnlyForAnInvalidRequest) {
  EXPECT_EQ(outcome_of_refusal(make_error(errc::invalid_request, "n > 1", "n")),
            outcome::unsupported);
  EXPECT_EQ(outcome_of_refusal(make_error(errc::unavailable)), outcome::provider_down);
  EXPECT_EQ(outcome_of_refusal(caf::make_error(caf::sec::request_receiver_down)),
            outcome::provider_down);
  EXPECT_EQ(outcome_of_refusal(caf::error{}), outcome::provider_down);
}

TEST(ProviderOutcome, IbErrorsRoundTripThroughCaf) {
  auto e = make_error(error{errc::invalid_request, "anthropic does not support n > 1", "n"});
  EXPECT_EQ(e.category(), caf::atom("ib"));
  EXPECT_EQ(e.code(), static_cast<std::uint8_t>(errc::invalid_request));
  auto back = to_ib_error(e);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->code, errc::invalid_request);
  EXPECT_EQ(back->message, "anthropic does not support n > 1");
  EXPECT_EQ(back->param, "n");
  // A handler returning caf::result<T> may return the bare code (found by ADL).
  caf::error bare = errc::unavailable;
  EXPECT_EQ(bare.category(), caf::atom("ib"));
  EXPECT_FALSE(to_ib_error(caf::make_error(caf::sec::request_receiver_down)));
  EXPECT_FALSE(to_ib_error(caf::error{}));
}

// -- the actor ------------------------------------------------------------------------------------

/// What the calling actor saw: the call's answer, then whatever the exchange reported.
struct seen {
  bool answered = false;
  std::optional<caf::error> refused;
  std::vector<std::shared_ptr<attempt_result>> results;
};

class ProviderActorTest : public testing::Test {
 protected:
  ProviderActorTest() : sys_(deterministic(cfg_)) { cfg_data_ = *config::load_default({}); }

  ~ProviderActorTest() override {
    for (auto& a : actors_) {
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    sched_.run();
  }

  static caf::actor_system_config& deterministic(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  /// A provider actor for `name`, pointed at a loopback port nothing listens on.
  caf::actor spawn_provider(const std::string& name) {
    auto p = std::make_shared<config::provider_config>(*cfg_data_.find_provider(name));
    p->endpoint.tls = false;
    p->endpoint.host = "127.0.0.1";
    p->endpoint.port = closed_port();
    provider_options opts;
    opts.provider = p;
    opts.io.ctx = &io_;
    auto a = sys_.spawn(provider_actor, std::move(opts));
    actors_.push_back(a);
    return a;
  }

  std::uint16_t closed_port() {
    net::ip::tcp::acceptor a(io_, {net::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }

  static std::shared_ptr<const providers::chat_request> request(std::string body) {
    auto r = providers::parse_chat_request(std::move(body));
    EXPECT_TRUE(r) << r.error().message;
    return std::make_shared<const providers::chat_request>(std::move(*r));
  }

  /// Spawns an actor that asks `provider` to make `req` and records what it sees in `out`.
  void call(const caf::actor& provider, std::shared_ptr<const providers::chat_request> req,
            seen& out) {
    // Arguments, not captures: 0.17's init_fun_factory dereferences a null tuple for a spawned
    // function without arguments (UBSan reports it).
    actors_.push_back(sys_.spawn(caller, provider, std::move(req), &out));
  }

  /// `out` is a raw pointer because the test outlives every actor.
  static caf::behavior caller(caf::event_based_actor* self, caf::actor provider,
                              std::shared_ptr<const providers::chat_request> req, seen* out) {
    auto c = std::make_shared<upstream_call>();
    c->attempt = 7;
    c->request = std::move(req);
    c->upstream_model = "m";
    c->api_key = "sk-test";
    c->deadline = std::chrono::steady_clock::now() + 10s;
    c->reply_to = caf::actor_cast<caf::actor>(self);
    c->control = std::make_shared<call_control>();
    self->request(provider, caf::infinite, call_atom::value, std::move(c))
        .then([out] { out->answered = true; },
              [out](caf::error& e) {
                out->answered = true;
                out->refused = std::move(e);
              });
    return {
        [out](reply_atom, std::shared_ptr<attempt_result>& r) { out->results.push_back(r); },
        [](chunk_atom, std::shared_ptr<stream_piece>&) {},
    };
  }

  /// Polls the I/O context and runs the actors until `done()`, for at most five seconds.
  template <class Predicate>
  bool run_until(Predicate done) {
    const auto limit = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < limit) {
      io_.restart();
      io_.run_for(10ms);
      sched_.run();
    }
    return done();
  }

  net::io_context io_;  // outlives the actor system: provider actors' pools post onto it
  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_ =
      dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler());
  config::config cfg_data_;
  std::vector<caf::actor> actors_;
};

TEST_F(ProviderActorTest, RefusesARequestItsProtocolCannotExpressWithAnIbError) {
  auto provider = spawn_provider("anthropic");
  seen out;
  call(provider, request(R"({"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]})"),
       out);
  sched_.run();  // no I/O: the answer comes from the actor alone
  ASSERT_TRUE(out.answered);
  ASSERT_TRUE(out.refused);
  EXPECT_EQ(out.refused->category(), caf::atom("ib"));
  auto err = to_ib_error(*out.refused);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, errc::invalid_request);
  EXPECT_EQ(err->param, "n");
  EXPECT_NE(err->message.find("n > 1"), std::string::npos) << err->message;
  EXPECT_EQ(outcome_of_refusal(*out.refused), outcome::unsupported);
  EXPECT_TRUE(out.results.empty());  // refused: no exchange, so no result message either
}

TEST_F(ProviderActorTest, AnswersATakenCallAtOnceAndReportsTheResultLater) {
  auto provider = spawn_provider("openai");
  seen out;
  call(provider, request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), out);
  sched_.run();  // no I/O yet: the exchange has only been started
  ASSERT_TRUE(out.answered);
  EXPECT_FALSE(out.refused);
  EXPECT_TRUE(out.results.empty());
  ASSERT_TRUE(run_until([&] { return !out.results.empty(); }));
  EXPECT_EQ(out.results.front()->attempt, 7u);
  EXPECT_EQ(out.results.front()->result, outcome::connect_error);  // nothing listens
  EXPECT_EQ(out.results.front()->client_status, 502);
}

TEST_F(ProviderActorTest, ACallAfterShutdownIsAnsweredWithAnErrorMeaningProviderDown) {
  auto provider = spawn_provider("openai");
  caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
  sched_.run();
  seen out;
  call(provider, request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), out);
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  ASSERT_TRUE(out.refused);
  EXPECT_EQ(*out.refused, caf::sec::request_receiver_down);
  EXPECT_EQ(outcome_of_refusal(*out.refused), outcome::provider_down);
  EXPECT_TRUE(out.results.empty());
}

}  // namespace
}  // namespace ib::actors
