#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/mock/behaviour.hpp"
#include "bench/mock/wire.hpp"

namespace ib::mock {

/// One provider request as received, for `GET /__mock/requests`.
struct request_record {
  provider who = provider::openai;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool stream = false;
  std::optional<std::string> model;
};

/// The random-fault mode of one provider (`POST /__mock/chaos`): each chat call that finds no
/// queued script step fails, with chance `rate`, with one of `faults` picked uniformly.
struct chaos_spec {
  double rate = 0;                  // 0 to 1; 0 switches the mode off
  std::vector<behaviour> faults;    // at least one when `rate` > 0
  std::vector<std::string> labels;  // one per fault, as given (a token list or the step's JSON)
  std::uint64_t seed = 1;           // the draws are a function of the seed and the call order
};

/// State shared by every connection: counters (atomics), script queues and the record ring
/// (each behind its own mutex). All members are safe to call from any thread.
class mock_state {
 public:
  /// Keeps at most `record_limit` records (0: none) and at most `record_bytes` bytes of them.
  mock_state(std::size_t record_limit, std::size_t record_bytes);

  /// Whether requests are recorded at all (callers skip copying when not).
  bool records() const { return record_limit_ > 0; }

  /// Counts one request to `p`.
  void count_request(provider p);

  /// The next reply number (`mock-<n>`), starting at 1.
  std::uint64_t next_reply() { return ++replies_; }

  void connection_opened();
  void connection_closed();
  /// Counts a connection closed for idling (keep-alive timeout or random moment).
  void idle_closed() { ++idle_closed_; }
  /// Counts a connection closed, unread, as a request arrived on it.
  void race_closed() { ++race_closed_; }
  void request_started() { ++in_flight_; }
  void request_finished() { --in_flight_; }

  /// Appends `r` to the ring, evicting the oldest records beyond the limits.
  void record(request_record r);

  /// Appends `steps` to `p`'s queue; returns the queue's new length.
  std::size_t push_steps(provider p, std::vector<behaviour> steps);

  /// Removes and returns the oldest queued step for `p`, if any.
  std::optional<behaviour> pop_step(provider p);

  /// Sets (or, with rate 0, clears) `p`'s random-fault mode and zeroes its counters.
  void set_chaos(provider p, chaos_spec spec);

  /// Draws for one chat call to `p`: the fault to answer with, or nothing (answer as asked).
  std::optional<behaviour> draw_fault(provider p);

  /// Clears scripts, records, random-fault modes and counters; open connections and in-flight
  /// requests stay.
  void reset();

  /// `[{"seq",...}]`, oldest first; only `p`'s records when given.
  std::string requests_json(std::optional<provider> p) const;

  /// `{"requests":{...},"connections":{"accepted","closed","open","idle_closed","race_closed"},
  /// "in_flight":n,"chaos":{"<provider>":{"rate","calls","faults","by_fault":{"<label>":n}}}}`.
  std::string stats_json() const;

 private:
  const std::size_t record_limit_;
  const std::size_t record_bytes_limit_;

  std::array<std::atomic<std::uint64_t>, provider_count> requests_{};
  std::atomic<std::uint64_t> replies_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> closed_{0};
  std::atomic<std::int64_t> open_{0};
  std::atomic<std::uint64_t> idle_closed_{0};
  std::atomic<std::uint64_t> race_closed_{0};
  std::atomic<std::int64_t> in_flight_{0};

  mutable std::mutex records_mutex_;
  std::deque<std::pair<std::uint64_t, request_record>> records_;
  std::size_t record_bytes_ = 0;
  std::uint64_t record_seq_ = 0;

  std::mutex scripts_mutex_;
  std::array<std::deque<behaviour>, provider_count> scripts_;
  std::atomic<std::size_t> queued_steps_{0};  // lets the hot path skip the mutex

  /// One provider's random-fault mode and what it did.
  struct chaos_slot {
    chaos_spec spec;
    std::mt19937_64 rng;
    std::uint64_t calls = 0;
    std::uint64_t faults = 0;
    std::vector<std::uint64_t> by_fault;
  };
  mutable std::mutex chaos_mutex_;
  std::array<chaos_slot, provider_count> chaos_;
  std::atomic<int> chaos_on_{0};  // providers with a mode on; lets the hot path skip the mutex
};

}  // namespace ib::mock
