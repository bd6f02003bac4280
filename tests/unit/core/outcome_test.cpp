#include "core/outcome.hpp"

#include <set>
#include <string_view>

#include <gtest/gtest.h>

namespace ib {
namespace {

struct status_case {
  int status;
  outcome expected;
};

TEST(Outcome, ClassifyStatusTable) {
  const status_case cases[] = {
      {200, outcome::success},          {201, outcome::success},
      {299, outcome::success},          {400, outcome::request_rejected},
      {404, outcome::request_rejected}, {413, outcome::request_rejected},
      {422, outcome::request_rejected}, {401, outcome::key_rejected},
      {402, outcome::key_rejected},     {403, outcome::key_rejected},
      {408, outcome::retryable_status}, {409, outcome::retryable_status},
      {499, outcome::retryable_status}, {424, outcome::retryable_status},
      {429, outcome::rate_limited},     {500, outcome::server_error},
      {502, outcome::server_error},     {503, outcome::server_error},
      {504, outcome::server_error},     {529, outcome::server_error},
      {498, outcome::server_error},     {599, outcome::server_error},
      {100, outcome::bad_response},     {302, outcome::bad_response},
      {0, outcome::bad_response},       {600, outcome::bad_response},
      {-1, outcome::bad_response},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(classify_status(c.status), c.expected) << "status " << c.status;
  }
}

TEST(Outcome, RequestFaultsDoNotFallBack) {
  for (int status : {400, 404, 413, 422}) {
    const auto o = classify_status(status);
    EXPECT_FALSE(falls_back(o)) << status;
    EXPECT_FALSE(counts_against_breaker(o)) << status;
  }
}

TEST(Outcome, KeyAndRateLimitFallBackWithoutCountingAgainstBreaker) {
  for (int status : {401, 402, 403, 429, 408, 409, 499}) {
    const auto o = classify_status(status);
    EXPECT_TRUE(falls_back(o)) << status;
    EXPECT_FALSE(counts_against_breaker(o)) << status;
  }
}

TEST(Outcome, ServerErrorsFallBackAndCountAgainstBreaker) {
  for (int status : {500, 502, 503, 504, 529, 498}) {
    const auto o = classify_status(status);
    EXPECT_TRUE(falls_back(o)) << status;
    EXPECT_TRUE(counts_against_breaker(o)) << status;
  }
}

constexpr outcome all_outcomes[] = {
    outcome::success,          outcome::server_error,
    outcome::connect_error,    outcome::reset,
    outcome::connect_timeout,  outcome::first_byte_timeout,
    outcome::total_timeout,    outcome::bad_response,
    outcome::rate_limited,     outcome::key_rejected,
    outcome::retryable_status, outcome::provider_down,
    outcome::unsupported,      outcome::deadline,
    outcome::request_rejected, outcome::cancelled,
    outcome::skipped_no_key,   outcome::skipped_circuit_open,
    outcome::skipped_cooldown,
};

TEST(Outcome, BreakerFailuresAreExactlyTheProviderSideFailures) {
  const std::set<outcome> provider_side = {
      outcome::server_error,    outcome::connect_error,      outcome::reset,
      outcome::connect_timeout, outcome::first_byte_timeout, outcome::total_timeout,
      outcome::bad_response,
  };
  for (const auto o : all_outcomes) {
    EXPECT_EQ(counts_against_breaker(o), provider_side.contains(o)) << reason_text(o);
    // Everything the breaker counts is also a reason to try the next provider.
    if (counts_against_breaker(o)) {
      EXPECT_TRUE(falls_back(o)) << reason_text(o);
    }
  }
}

TEST(Outcome, FallbackConsistency) {
  EXPECT_FALSE(falls_back(outcome::success));
  EXPECT_FALSE(falls_back(outcome::request_rejected));
  EXPECT_FALSE(falls_back(outcome::cancelled));
  EXPECT_FALSE(falls_back(outcome::deadline));
  for (const auto o : {outcome::skipped_no_key, outcome::skipped_circuit_open,
                       outcome::skipped_cooldown, outcome::provider_down, outcome::unsupported}) {
    EXPECT_TRUE(falls_back(o)) << reason_text(o);
    EXPECT_FALSE(counts_against_breaker(o)) << reason_text(o);
  }
}

TEST(Outcome, SkipsAreExactlyTheThreeSkips) {
  for (const auto o : all_outcomes) {
    const bool skip = o == outcome::skipped_no_key || o == outcome::skipped_circuit_open
                      || o == outcome::skipped_cooldown;
    EXPECT_EQ(is_skip(o), skip) << reason_text(o);
  }
}

TEST(Outcome, ReasonTextsAreDistinctAndMatchTheAttemptsHeader) {
  std::set<std::string_view> seen;
  for (const auto o : all_outcomes) {
    const auto text = reason_text(o);
    EXPECT_FALSE(text.empty());
    EXPECT_NE(text, "unknown");
    EXPECT_TRUE(seen.insert(text).second) << "duplicate " << text;
  }
  EXPECT_EQ(reason_text(outcome::skipped_no_key), "no_key");
  EXPECT_EQ(reason_text(outcome::skipped_circuit_open), "circuit_open");
  EXPECT_EQ(reason_text(outcome::skipped_cooldown), "cooldown");
  EXPECT_EQ(reason_text(outcome::connect_error), "connect_error");
  EXPECT_EQ(reason_text(outcome::first_byte_timeout), "first_byte_timeout");
  EXPECT_EQ(reason_text(outcome::deadline), "deadline");
}

}  // namespace
}  // namespace ib
