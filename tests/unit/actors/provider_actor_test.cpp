// The provider actor's side of the call protocol (actors/messages.hpp, `upstream_call`): the
// call's response is the attempt's result, sent when the exchange ends (after every stream
// piece), or an "ib" error when the provider cannot take the call; a call the actor dies with is
// bounced by CAF; and the mapping of the client's wire failures to attempt outcomes. CAF's
// deterministic scheduler drives the actors; exchanges run on an io_context polled by the test
// thread (the "I/O thread" that sends the response), within a bounded wait.
#include "actors/provider_actor.hpp"

#include <array>
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

TEST(CommandError, DroppedCommandsAreServiceRestartingOthersKeepTheirError) {
  for (auto dropped : {caf::sec::request_receiver_down, caf::sec::request_timeout}) {
    auto e = caf::make_error(dropped);
    EXPECT_TRUE(is_dropped(e));
    auto err = command_error(e, "The key service restarted");
    EXPECT_EQ(err.code, errc::unavailable);
    EXPECT_EQ(err.detail_code, "service_restarting");
    EXPECT_EQ(err.message, "The key service restarted");
  }
  auto own = command_error(make_error(errc::conflict, "email already registered"), "x");
  EXPECT_EQ(own.code, errc::conflict);
  EXPECT_EQ(own.message, "email already registered");
  EXPECT_FALSE(is_dropped(make_error(errc::unavailable)));
  EXPECT_EQ(command_error(caf::make_error(caf::sec::unexpected_message), "x").code, errc::internal);
}

// -- the actor ------------------------------------------------------------------------------------

/// What the calling actor saw, in order: stream pieces, then the call's answer.
struct seen {
  bool answered = false;
  std::optional<caf::error> refused;
  std::optional<attempt_result> result;
  std::vector<stream_piece> pieces;
  std::vector<std::string> order;  ///< "piece" or "response", as they arrived
};

/// A loopback upstream that answers every request with the raw HTTP `response` and closes.
class canned_upstream {
 public:
  canned_upstream(net::io_context& io, std::string response)
      : acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}), response_(std::move(response)) {
    accept();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  using socket_ptr = std::shared_ptr<net::ip::tcp::socket>;

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, net::ip::tcp::socket s) {
      if (ec) {
        return;
      }
      read(std::make_shared<net::ip::tcp::socket>(std::move(s)), std::make_shared<std::string>());
      accept();
    });
  }

  /// Reads until the request's head and its Content-Length body are in, then answers.
  void read(socket_ptr sock, std::shared_ptr<std::string> got) {
    auto buf = std::make_shared<std::array<char, 4096>>();
    sock->async_read_some(
        net::buffer(*buf), [this, sock, got, buf](boost::system::error_code ec, std::size_t n) {
          if (ec) {
            return;
          }
          got->append(buf->data(), n);
          if (!complete(*got)) {
            return read(sock, got);
          }
          net::async_write(*sock, net::buffer(response_),
                           [sock](boost::system::error_code, std::size_t) {
                             boost::system::error_code ignored;
                             sock->shutdown(net::ip::tcp::socket::shutdown_both, ignored);
                           });
        });
  }

 public:
  /// Whether `req` holds a whole request: its head and its Content-Length body.
  static bool complete(const std::string& req) {
    auto end = req.find("\r\n\r\n");
    if (end == std::string::npos) {
      return false;
    }
    std::string head = req.substr(0, end);
    for (auto& c : head) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::size_t length = 0;
    if (auto at = head.find("content-length:"); at != std::string::npos) {
      length = std::stoul(head.substr(at + 15));
    }
    return req.size() >= end + 4 + length;
  }

 private:
  net::ip::tcp::acceptor acceptor_;
  std::string response_;
};

/// A loopback upstream for one exchange that writes `first` once the request is in, and `rest`
/// (then closes) only when the test calls `send_rest`: two separate reads for the gateway.
class split_upstream {
 public:
  split_upstream(net::io_context& io, std::string first, std::string rest)
      : acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}),
        first_(std::move(first)),
        rest_(std::move(rest)) {
    acceptor_.async_accept([this](boost::system::error_code ec, net::ip::tcp::socket s) {
      if (ec) {
        return;
      }
      sock_ = std::make_shared<net::ip::tcp::socket>(std::move(s));
      read();
    });
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void send_rest() {
    net::async_write(*sock_, net::buffer(rest_),
                     [s = sock_](boost::system::error_code, std::size_t) {
                       boost::system::error_code ignored;
                       s->shutdown(net::ip::tcp::socket::shutdown_both, ignored);
                     });
  }

 private:
  void read() {
    sock_->async_read_some(net::buffer(buf_), [this](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        return;
      }
      got_.append(buf_.data(), n);
      if (!canned_upstream::complete(got_)) {
        return read();
      }
      net::async_write(*sock_, net::buffer(first_), [](boost::system::error_code, std::size_t) {});
    });
  }

  net::ip::tcp::acceptor acceptor_;
  std::string first_;
  std::string rest_;
  std::shared_ptr<net::ip::tcp::socket> sock_;
  std::array<char, 4096> buf_{};
  std::string got_;
};

/// An HTTP/1.1 response with `content_type` and `body`, closing the connection.
std::string http_response(std::string_view content_type, std::string_view body) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

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

  /// A provider actor for `name`, pointed at loopback `port` (by default one nothing listens on).
  provider_actor_handle spawn_provider(const std::string& name, std::uint16_t port = 0) {
    auto p = std::make_shared<config::provider_config>(*cfg_data_.find_provider(name));
    p->endpoint.tls = false;
    p->endpoint.host = "127.0.0.1";
    p->endpoint.port = port != 0 ? port : closed_port();
    provider_options opts;
    opts.provider = p;
    opts.io.ctx = &io_;
    auto a = sys_.spawn(provider_actor, std::move(opts));
    actors_.push_back(caf::actor_cast<caf::actor>(a));
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
  void call(const provider_actor_handle& provider,
            std::shared_ptr<const providers::chat_request> req, seen& out,
            std::shared_ptr<stream_flow> flow = nullptr) {
    // Arguments, not captures: 0.17's init_fun_factory dereferences a null tuple for a spawned
    // function without arguments (UBSan reports it).
    actors_.push_back(sys_.spawn(caller, provider, std::move(req), &out, std::move(flow)));
  }

  /// `out` is a raw pointer because the test outlives every actor. With a `flow`, the caller
  /// counts the pieces it handles in `flow->forwarded`, as the request actor does.
  static caf::behavior caller(caf::event_based_actor* self, provider_actor_handle provider,
                              std::shared_ptr<const providers::chat_request> req, seen* out,
                              std::shared_ptr<stream_flow> flow) {
    upstream_call c;
    c.flow = flow;
    c.attempt = 7;
    c.request = std::move(req);
    c.upstream_model = "m";
    c.api_key = "sk-test";
    c.deadline = std::chrono::steady_clock::now() + 10s;
    c.control = std::make_shared<call_control>();
    self->request(provider, caf::infinite, call_atom::value, std::move(c))
        .then(
            [out](attempt_result& r) {
              out->answered = true;
              out->result = std::move(r);
              out->order.emplace_back("response");
            },
            [out](caf::error& e) {
              out->answered = true;
              out->refused = std::move(e);
              out->order.emplace_back("response");
            });
    return {
        [out, flow](chunk_atom, stream_piece& p) {
          out->pieces.push_back(std::move(p));
          out->order.emplace_back("piece");
          if (flow) {
            flow->forwarded.fetch_add(1);
          }
        },
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

constexpr std::string_view completion =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-test",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"hello"},)"
    R"("finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,)"
    R"("total_tokens":5}})";

std::string sse_event(std::string_view delta, std::string_view finish) {
  std::string out =
      R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test",)"
      R"("choices":[{"index":0,"delta":)";
  out += delta;
  out += R"(,"finish_reason":)";
  out += finish;
  out += "}]}\n\n";
  return out;
}

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
  EXPECT_FALSE(out.result);  // refused: no exchange, so no result
}

TEST_F(ProviderActorTest, RespondsWithTheAttemptResultWhenTheExchangeEnds) {
  auto provider = spawn_provider("openai");
  seen out;
  call(provider, request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), out);
  sched_.run();  // no I/O yet: the exchange has only been started, so no response either
  EXPECT_FALSE(out.answered);
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  EXPECT_FALSE(out.refused);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->attempt, 7u);
  EXPECT_EQ(out.result->result, outcome::connect_error);  // nothing listens
  EXPECT_EQ(out.result->client_status, 502);
}

TEST_F(ProviderActorTest, TheResponseCarriesANonStreamAnswer) {
  canned_upstream upstream{io_, http_response("application/json", completion)};
  auto provider = spawn_provider("openai", upstream.port());
  seen out;
  call(provider, request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), out);
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  ASSERT_FALSE(out.refused) << caf::to_string(*out.refused);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->attempt, 7u);
  EXPECT_EQ(out.result->result, outcome::success);
  EXPECT_EQ(out.result->upstream_status, 200);
  EXPECT_EQ(out.result->client_status, 200);
  EXPECT_NE(out.result->body.find("hello"), std::string::npos) << out.result->body;
  EXPECT_EQ(out.result->model, "gpt-test");
  ASSERT_TRUE(out.result->tokens);
  EXPECT_EQ(out.result->tokens->total_tokens, 5);
  EXPECT_TRUE(out.pieces.empty());
  EXPECT_EQ(out.order, std::vector<std::string>{"response"});
}

TEST_F(ProviderActorTest, TheResponseOfAStreamFollowsAllItsPieces) {
  std::string body = sse_event(R"({"role":"assistant","content":""})", "null")
                     + sse_event(R"({"content":"Hel"})", "null")
                     + sse_event(R"({"content":"lo"})", R"("stop")") + "data: [DONE]\n\n";
  canned_upstream upstream{io_, http_response("text/event-stream", body)};
  auto provider = spawn_provider("openai", upstream.port());
  seen out;
  call(provider,
       request(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})"), out);
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  ASSERT_FALSE(out.refused) << caf::to_string(*out.refused);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->result, outcome::success);
  EXPECT_EQ(out.result->client_status, 200);
  ASSERT_FALSE(out.pieces.empty());
  std::string streamed;
  for (const auto& p : out.pieces) {
    EXPECT_EQ(p.attempt, 7u);
    streamed += p.bytes;
  }
  EXPECT_NE(streamed.find("Hel"), std::string::npos) << streamed;
  EXPECT_NE(streamed.find("lo"), std::string::npos) << streamed;
  EXPECT_TRUE(out.pieces.back().content);
  // Every piece came before the response, which came once, last.
  ASSERT_EQ(out.order.size(), out.pieces.size() + 1);
  EXPECT_EQ(out.order.back(), "response");
}

/// A flow after the commit point, whose direct writes land in `written`, in order.
std::shared_ptr<stream_flow> committed_flow(std::shared_ptr<std::vector<std::string>> written) {
  auto flow = std::make_shared<stream_flow>();
  flow->pending = [] { return std::size_t{0}; };
  flow->when_drained = [](std::function<void()> fn) { fn(); };
  flow->write = [written](std::string bytes) { written->push_back(std::move(bytes)); };
  flow->committed = true;
  return flow;
}

TEST_F(ProviderActorTest, AfterTheCommitPointTheHandlerWritesPiecesItselfInsteadOfMessaging) {
  // Read in two parts: the first (with the model) goes to the caller, who counts it; the rest
  // is then written directly, the caller never sees it.
  const std::string first =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Connection: close\r\n\r\n"
      + sse_event(R"({"role":"assistant","content":"Hel"})", "null");
  const std::string rest = sse_event(R"({"content":"lo"})", "null")
                           + sse_event(R"({"content":" there"})", R"("stop")") + "data: [DONE]\n\n";
  split_upstream upstream{io_, first, rest};
  auto provider = spawn_provider("openai", upstream.port());
  auto written = std::make_shared<std::vector<std::string>>();
  seen out;
  call(provider,
       request(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})"), out,
       committed_flow(written));
  ASSERT_TRUE(run_until([&] { return !out.pieces.empty(); }));
  EXPECT_NE(out.pieces.front().bytes.find("Hel"), std::string::npos);
  upstream.send_rest();
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->result, outcome::success);
  std::string direct;
  for (const auto& w : *written) {
    direct += w;
  }
  EXPECT_NE(direct.find("\"lo\""), std::string::npos) << direct;
  EXPECT_LT(direct.find("\"lo\""), direct.find("\" there\"")) << direct;
  for (const auto& p : out.pieces) {
    EXPECT_EQ(p.bytes.find("\"lo\""), std::string::npos) << p.bytes;
  }
  EXPECT_EQ(out.order.back(), "response");
}

/// Without the commit (or with a piece still in the request actor's mailbox) nothing is
/// written directly.
TEST_F(ProviderActorTest, BeforeTheCommitPointEveryPieceGoesToTheRequestActor) {
  const std::string first =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Connection: close\r\n\r\n"
      + sse_event(R"({"role":"assistant","content":"Hel"})", "null");
  const std::string rest = sse_event(R"({"content":"lo"})", R"("stop")") + "data: [DONE]\n\n";
  split_upstream upstream{io_, first, rest};
  auto provider = spawn_provider("openai", upstream.port());
  auto written = std::make_shared<std::vector<std::string>>();
  auto flow = committed_flow(written);
  flow->committed = false;
  seen out;
  call(provider,
       request(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})"), out,
       flow);
  ASSERT_TRUE(run_until([&] { return !out.pieces.empty(); }));
  upstream.send_rest();
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  EXPECT_TRUE(written->empty());
  std::string streamed;
  for (const auto& p : out.pieces) {
    streamed += p.bytes;
  }
  EXPECT_NE(streamed.find("\"lo\""), std::string::npos) << streamed;
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
  EXPECT_FALSE(out.result);
}

TEST_F(ProviderActorTest, ACallInTheMailboxOfAKilledActorIsBouncedByCaf) {
  // CAF 0.17.6 bounces a request left in a dying actor's mailbox (scheduled_actor::cleanup runs
  // a sync_request_bouncer over it): the asker gets request_receiver_down, never silence. The
  // kill is sent urgent (anon_send_exit's is not), so it overtakes the call queued before it.
  auto provider = spawn_provider("openai");
  sched_.run();
  seen out;
  call(provider, request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), out);
  ASSERT_TRUE(sched_.try_run_once());  // the caller sends its call: it waits in the mailbox
  auto dest = caf::actor_cast<caf::actor>(provider);
  dest->enqueue(nullptr, caf::make_message_id(caf::message_priority::high),
                caf::make_message(caf::exit_msg{dest.address(), caf::exit_reason::kill}), nullptr);
  ASSERT_TRUE(run_until([&] { return out.answered; }));
  ASSERT_TRUE(out.refused);
  EXPECT_EQ(*out.refused, caf::sec::request_receiver_down);
  EXPECT_TRUE(is_dropped(*out.refused));
  EXPECT_FALSE(out.result);
}

}  // namespace
}  // namespace ib::actors
