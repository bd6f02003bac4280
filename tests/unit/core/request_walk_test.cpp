// The fallback walk as a pure value (design §4 and §5), table by table: every skip reason, every
// fallback trigger, the commit point of streams, and every final answer.
#include "core/request_walk.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ib {
namespace {

using namespace std::chrono_literals;

const steady_time t0 = steady_time{} + 1000s;
const steady_time deadline = t0 + 120s;

/// A plan of providers with their health views.
struct plan {
  std::vector<std::string> names;
  std::vector<provider_view> views;

  walk_step advance(request_walk& w, steady_time now = t0) const {
    return w.advance([this](std::size_t i) { return views[i]; },
                     [this](std::size_t i) -> const std::string& { return names[i]; }, now);
  }
};

provider_view keyed(breaker_state s = breaker_state::closed) {
  provider_view v;
  v.has_key = true;
  v.state = s;
  return v;
}

attempt_end ended(outcome o, int status = 0) {
  attempt_end e;
  e.result = o;
  e.upstream_status = status;
  e.latency_ms = 3;
  return e;
}

TEST(RequestWalk, EverySkipReasonThenTheFirstUsableProvider) {
  provider_view no_key;
  auto cooling = keyed();
  cooling.cooldown_until = t0 + 5s;
  auto open = keyed(breaker_state::open);
  open.retry_at = t0 + 30s;
  plan p{{"groq", "deepseek", "together", "openai"}, {no_key, cooling, open, keyed()}};
  request_walk w(4, deadline, false);
  auto s = p.advance(w);
  EXPECT_EQ(s.action, walk_action::call);
  EXPECT_EQ(s.entry, 3u);
  EXPECT_EQ(attempts_header(w.attempts()), "groq=no_key;deepseek=cooldown;together=circuit_open");
  EXPECT_EQ(w.summary().keyed, 3);
}

TEST(RequestWalk, AnOpenBreakerPastItsRetryTimeOrHalfOpenIsProbed) {
  auto due = keyed(breaker_state::open);
  due.retry_at = t0 - 1ms;
  for (const auto& v : {due, keyed(breaker_state::half_open)}) {
    plan p{{"openai"}, {v}};
    request_walk w(1, deadline, false);
    EXPECT_EQ(p.advance(w).action, walk_action::probe);
  }
  // The supervisor refused the slot: a circuit_open skip, and with nothing else, 503.
  plan p{{"openai"}, {due}};
  request_walk w(1, deadline, false);
  ASSERT_EQ(p.advance(w).action, walk_action::probe);
  w.probe_refused("openai", t0 + 7s);
  EXPECT_EQ(p.advance(w).action, walk_action::answer);
  auto f = w.final_answer("ib/x", p.names, t0);
  EXPECT_EQ(http_status(f.err.code), 503);
  EXPECT_EQ(f.retry_after_s, 7);
  EXPECT_EQ(attempts_header(w.attempts()), "openai=circuit_open");
}

TEST(RequestWalk, EveryFallbackTriggerFallsBackAndTheRequestsOwnFaultDoesNot) {
  struct row {
    outcome o;
    int status;
    end_action expected;
    const char* token;
  };
  const row rows[] = {
      {outcome::server_error, 503, end_action::fall_back, "openai=503"},
      {outcome::server_error, 529, end_action::fall_back, "openai=529"},
      {outcome::connect_error, 0, end_action::fall_back, "openai=connect_error"},
      {outcome::reset, 0, end_action::fall_back, "openai=reset"},
      {outcome::connect_timeout, 0, end_action::fall_back, "openai=connect_timeout"},
      {outcome::first_byte_timeout, 200, end_action::fall_back, "openai=first_byte_timeout"},
      {outcome::total_timeout, 200, end_action::fall_back, "openai=total_timeout"},
      {outcome::bad_response, 200, end_action::fall_back, "openai=bad_response"},
      {outcome::rate_limited, 429, end_action::fall_back, "openai=429"},
      {outcome::key_rejected, 401, end_action::fall_back, "openai=401"},
      {outcome::key_rejected, 402, end_action::fall_back, "openai=402"},
      {outcome::retryable_status, 408, end_action::fall_back, "openai=408"},
      {outcome::provider_down, 0, end_action::fall_back, "openai=provider_down"},
      {outcome::request_rejected, 400, end_action::pass_through, "openai=400"},
      {outcome::request_rejected, 404, end_action::pass_through, "openai=404"},
      {outcome::request_rejected, 413, end_action::pass_through, "openai=413"},
      {outcome::request_rejected, 422, end_action::pass_through, "openai=422"},
      {outcome::success, 200, end_action::answer, "openai=200"},
      {outcome::cancelled, 0, end_action::drop, "openai=cancelled"},
      {outcome::deadline, 0, end_action::answer_final, "openai=deadline"},
  };
  for (const auto& r : rows) {
    plan p{{"openai", "sarvam"}, {keyed(), keyed()}};
    request_walk w(2, deadline, false);
    ASSERT_EQ(p.advance(w).action, walk_action::call);
    auto n = w.start("openai");
    EXPECT_EQ(w.end(n, ended(r.o, r.status)), r.expected) << r.token;
    EXPECT_EQ(attempts_header(w.attempts()), r.token);
    if (r.expected == end_action::fall_back) {
      auto next = p.advance(w);
      EXPECT_EQ(next.action, walk_action::call) << r.token;
      EXPECT_EQ(next.entry, 1u) << r.token;
    }
  }
}

TEST(RequestWalk, AnAdapterRefusalSkipsToTheNextProviderAndNamesTheField) {
  plan p{{"anthropic", "openai"}, {keyed(), keyed()}};
  request_walk w(2, deadline, false);
  ASSERT_EQ(p.advance(w).entry, 0u);
  auto e = ended(outcome::unsupported);
  e.unsupported = "content parts of type \"input_audio\" are not supported";
  e.param = "messages[0].content[0].type";
  EXPECT_EQ(w.end(w.start("anthropic"), e), end_action::fall_back);
  EXPECT_EQ(p.advance(w).entry, 1u);
  EXPECT_EQ(attempts_header(w.attempts()), "anthropic=unsupported");
  // Alone in its plan: a 400 naming the field.
  request_walk alone(1, deadline, false);
  plan q{{"anthropic"}, {keyed()}};
  ASSERT_EQ(q.advance(alone).action, walk_action::call);
  EXPECT_EQ(alone.end(alone.start("anthropic"), e), end_action::fall_back);
  EXPECT_EQ(q.advance(alone).action, walk_action::answer);
  auto f = alone.final_answer("anthropic/claude", q.names, t0);
  EXPECT_EQ(http_status(f.err.code), 400);
  EXPECT_EQ(f.err.param, "messages[0].content[0].type");
  EXPECT_NE(f.err.message.find("anthropic: content parts"), std::string::npos);
}

TEST(RequestWalk, LateResultsAndPiecesOfAGivenUpAttemptAreIgnored) {
  plan p{{"openai", "sarvam"}, {keyed(), keyed()}};
  request_walk w(2, deadline, true);
  p.advance(w);
  auto first = w.start("openai");
  EXPECT_EQ(w.end(first, ended(outcome::first_byte_timeout)), end_action::fall_back);
  p.advance(w);
  auto second = w.start("sarvam");
  EXPECT_EQ(w.end(first, ended(outcome::success, 200)), end_action::ignore);
  EXPECT_EQ(w.piece(first, true), request_walk::piece_action::ignore);
  EXPECT_FALSE(w.committed());
  EXPECT_EQ(w.piece(second, true), request_walk::piece_action::commit);
}

TEST(RequestWalk, TheStreamCommitPoint) {
  // Role-only chunks, pings and keep-alive comments carry no content: held, not committed; an
  // in-band error before any content is a failure that still falls back.
  plan p{{"anthropic", "openai"}, {keyed(), keyed()}};
  request_walk w(2, deadline, true);
  p.advance(w);
  auto a = w.start("anthropic");
  EXPECT_EQ(w.piece(a, false), request_walk::piece_action::hold);  // message_start (role only)
  EXPECT_EQ(w.piece(a, false), request_walk::piece_action::hold);  // ping
  EXPECT_EQ(w.end(a, ended(outcome::server_error, 200)), end_action::fall_back);  // overloaded
  p.advance(w);
  auto b = w.start("openai");
  EXPECT_EQ(w.piece(b, false), request_walk::piece_action::hold);
  EXPECT_EQ(w.piece(b, true), request_walk::piece_action::commit);  // the first content
  EXPECT_TRUE(w.committed());
  EXPECT_EQ(w.attempts_header_serving(), "anthropic=server_error;openai=200");
  EXPECT_EQ(w.piece(b, true), request_walk::piece_action::write);
  // After the commit point nothing falls back: the stream ends with an error event.
  EXPECT_EQ(w.end(b, ended(outcome::reset, 200)), end_action::end_with_error);

  request_walk ok(1, deadline, true);
  plan q{{"openai"}, {keyed()}};
  q.advance(ok);
  auto c = ok.start("openai");
  EXPECT_EQ(ok.piece(c, true), request_walk::piece_action::commit);
  EXPECT_EQ(ok.end(c, ended(outcome::success, 200)), end_action::end_stream);

  // A complete stream that never reached the commit point (an empty answer) commits at its end.
  request_walk empty(1, deadline, true);
  q.advance(empty);
  auto d = empty.start("openai");
  EXPECT_EQ(empty.piece(d, false), request_walk::piece_action::hold);
  EXPECT_EQ(empty.end(d, ended(outcome::success, 200)), end_action::commit_and_end);
  EXPECT_EQ(attempts_header(empty.attempts()), "openai=200");
}

TEST(RequestWalk, CancelRecordsTheAttemptInFlight) {
  plan p{{"openai"}, {keyed()}};
  request_walk w(1, deadline, false);
  p.advance(w);
  w.start("openai");
  w.cancel(12);
  EXPECT_FALSE(w.in_flight());
  ASSERT_EQ(w.attempts().size(), 1u);
  EXPECT_EQ(w.attempts()[0].reason, "cancelled");
  EXPECT_EQ(w.attempts()[0].latency_ms, 12);
}

TEST(RequestWalk, EveryFinalAnswer) {
  const std::vector<std::string> names{"openai", "sarvam", "openai"};
  struct row {
    const char* what;
    std::vector<outcome> ends;  ///< one attempt per provider with a key
    int status;
    const char* code;
    bool no_retry;
  };
  const row rows[] = {
      {"all failed", {outcome::server_error, outcome::reset}, 502, "all_providers_failed", true},
      {"all rate limited",
       {outcome::rate_limited, outcome::rate_limited},
       429,
       "rate_limited",
       false},
      {"all keys rejected",
       {outcome::key_rejected, outcome::key_rejected},
       424,
       "provider_key_rejected",
       true},
      {"all timed out",
       {outcome::first_byte_timeout, outcome::connect_timeout},
       504,
       "upstream_timeout",
       true},
      {"429 beside 503",
       {outcome::rate_limited, outcome::server_error},
       502,
       "all_providers_failed",
       true},
  };
  for (const auto& r : rows) {
    plan p{{"openai", "sarvam"}, {keyed(), keyed()}};
    request_walk w(2, deadline, false);
    for (auto o : r.ends) {
      auto s = p.advance(w);
      ASSERT_EQ(s.action, walk_action::call) << r.what;
      auto e = ended(o, o == outcome::rate_limited ? 429 : o == outcome::key_rejected ? 401 : 0);
      e.cooldown_until = t0 + 7s;
      e.message = "upstream words";
      EXPECT_EQ(w.end(w.start(p.names[s.entry]), e), end_action::fall_back) << r.what;
    }
    EXPECT_EQ(p.advance(w).action, walk_action::answer) << r.what;
    auto f = w.final_answer("ib/balanced", names, t0);
    EXPECT_EQ(http_status(f.err.code), r.status) << r.what;
    EXPECT_EQ(f.err.detail_code, r.code) << r.what;
    EXPECT_EQ(f.no_retry, r.no_retry) << r.what;
    if (r.status == 429) {
      EXPECT_EQ(f.retry_after_s, 7);
      EXPECT_NE(f.err.message.find("openai: upstream words; sarvam: upstream words"),
                std::string::npos)
          << f.err.message;
    }
  }
  // No key at all: 424 naming each provider once, param "model".
  plan none{{"openai", "sarvam", "openai"}, {provider_view{}, provider_view{}, provider_view{}}};
  request_walk w(3, deadline, false);
  EXPECT_EQ(none.advance(w).action, walk_action::answer);
  auto f = w.final_answer("ib/balanced", names, t0);
  EXPECT_EQ(http_status(f.err.code), 424);
  EXPECT_EQ(f.err.param, "model");
  EXPECT_NE(f.err.message.find("for one of: openai, sarvam."), std::string::npos) << f.err.message;
  // Names are compared whole: "groq" is listed although "groq2" (which contains it) came first.
  const std::vector<std::string> prefixed{"groq2", "groq", "groq2"};
  plan unkeyed{prefixed, {provider_view{}, provider_view{}, provider_view{}}};
  request_walk w2(3, deadline, false);
  EXPECT_EQ(unkeyed.advance(w2).action, walk_action::answer);
  f = w2.final_answer("ib/fast", prefixed, t0);
  EXPECT_NE(f.err.message.find("for one of: groq2, groq."), std::string::npos) << f.err.message;
  // The deadline: 504 "deadline", whatever is left of the plan.
  plan p{{"openai"}, {keyed()}};
  request_walk late(1, t0, false);
  EXPECT_EQ(p.advance(late, t0).action, walk_action::answer);
  f = late.final_answer("ib/balanced", names, t0);
  EXPECT_EQ(http_status(f.err.code), 504);
  EXPECT_EQ(f.err.detail_code, "deadline");
}

}  // namespace
}  // namespace ib
