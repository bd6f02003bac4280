// The request-log writer when the store cannot keep up (issue 14): records sent while the store
// is unreachable (`errc::unavailable`: PostgreSQL away) are kept, up to `max_buffered`, and
// written first, in order, once it answers again; beyond the bound the oldest are dropped and
// counted in `inferbridge_request_records_dropped_total`; a store that is slow (here: blocked)
// makes the metrics actor drop whole batches beyond the bound. The store is a real LMDB
// `key_store` behind a switch the test controls. Real threads (the writer is detached); every
// wait is on a condition with a bounded timeout (the writer retries on a 1 s timer), never a
// sleep used as synchronisation.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/messages.hpp"
#include "actors/metrics_actor.hpp"
#include "metrics/registry.hpp"
#include "storage/key_store.hpp"
#include "storage/store.hpp"
#include "tests/unit/actors/actor_test_support.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::actors {
namespace {

using namespace std::chrono_literals;

constexpr auto limit = 5s;
/// A bound for the writer's retry (a 1 s timer) to have written the backlog.
constexpr auto retry_limit = 4s;
const std::string user = "usr_buffertest";

/// What `append_requests` does: write, answer "unreachable", or wait until switched.
enum class append_mode { pass, unavailable, block };

/// A `store` that forwards every call to a real `key_store`, except that `append_requests` can be
/// switched to fail with errc::unavailable or to block until the test switches it again. It
/// remembers the ids it wrote, in the order they were written.
class switchable_store final : public storage::store {
 public:
  explicit switchable_store(std::shared_ptr<storage::key_store> inner) : inner_(std::move(inner)) {}

  void set_mode(append_mode m) {
    {
      std::lock_guard<std::mutex> g(mu_);
      mode_ = m;
    }
    cv_.notify_all();
  }

  /// Waits (bounded) until `n` calls of `append_requests` are blocked at once.
  bool await_blocked(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return blocked_ >= n; });
  }

  /// Waits (bounded) until `n` records have been written.
  bool await_written(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return written_.size() >= n; });
  }

  /// Waits (bounded) until `append_requests` has answered "unreachable" `n` times in all.
  bool await_refusals(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return refusals_ >= n; });
  }

  std::vector<std::string> written() const {
    std::lock_guard<std::mutex> g(mu_);
    return written_;
  }

  std::size_t refusals() const {
    std::lock_guard<std::mutex> g(mu_);
    return refusals_;
  }

  std::string_view kind() const noexcept override { return "test"; }

  result<storage::user_record> create_user(std::string_view email,
                                           const storage::sha256_digest& api_key_hash,
                                           std::int64_t now_unix) override {
    return inner_->create_user(email, api_key_hash, now_unix);
  }
  result<std::optional<storage::user_record>> find_user(std::string_view user_id) const override {
    return inner_->find_user(user_id);
  }
  result<std::optional<std::string>> user_for_key_hash(
      const storage::sha256_digest& hash) const override {
    return inner_->user_for_key_hash(hash);
  }
  result<std::optional<storage::user_state>> load_user(std::string_view user_id) const override {
    return inner_->load_user(user_id);
  }
  result<bool> put_provider_key(std::string_view user_id,
                                const storage::provider_key_record& rec) override {
    return inner_->put_provider_key(user_id, rec);
  }
  result<std::vector<storage::provider_key_record>> list_provider_keys(
      std::string_view user_id) const override {
    return inner_->list_provider_keys(user_id);
  }
  result<bool> delete_provider_key(std::string_view user_id, std::string_view provider) override {
    return inner_->delete_provider_key(user_id, provider);
  }
  result<void> for_each_api_key(const std::function<void(const storage::sha256_digest&,
                                                         std::string_view)>& fn) const override {
    return inner_->for_each_api_key(fn);
  }
  result<void> for_each_user(
      const std::function<void(const storage::user_record&)>& fn) const override {
    return inner_->for_each_user(fn);
  }
  result<void> for_each_provider_key(
      const std::function<void(std::string_view, const storage::provider_key_record&)>& fn)
      const override {
    return inner_->for_each_provider_key(fn);
  }
  result<std::size_t> rewrite_provider_tokens(
      const std::function<result<std::string>(const storage::provider_key_record&)>& fn) override {
    return inner_->rewrite_provider_tokens(fn);
  }

  result<void> append_requests(const std::vector<request_record>& records, int max_records_per_user,
                               std::int64_t max_age_s, std::int64_t now_unix) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (mode_ == append_mode::block) {
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lk, [&] { return mode_ != append_mode::block; });
      --blocked_;
    }
    if (mode_ == append_mode::unavailable) {
      ++refusals_;
      cv_.notify_all();
      return error{errc::unavailable, "the test store is unreachable"};
    }
    // Written under the lock, so `written_` is in commit order.
    auto rc = inner_->append_requests(records, max_records_per_user, max_age_s, now_unix);
    if (rc) {
      for (const auto& r : records) {
        written_.push_back(r.id);
      }
      cv_.notify_all();
    }
    return rc;
  }

  result<storage::request_page> list_requests(std::string_view user_id, std::size_t limit,
                                              std::string_view before) const override {
    return inner_->list_requests(user_id, limit, before);
  }

 private:
  std::shared_ptr<storage::key_store> inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  append_mode mode_ = append_mode::pass;
  std::size_t blocked_ = 0;
  std::size_t refusals_ = 0;
  std::vector<std::string> written_;
};

/// `req_000`, `req_001`, ...: ids that sort like their index.
std::string id_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "req_%03d", i);
  return buf;
}

std::vector<std::string> ids(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) {
    out.push_back(id_of(i));
  }
  return out;
}

/// The `"id"` values of a list body, in the order listed.
std::vector<std::string> listed_ids(const std::string& body) {
  std::vector<std::string> out;
  const std::string tag = "\"id\":\"";
  for (auto pos = body.find(tag); pos != std::string::npos; pos = body.find(tag, pos)) {
    pos += tag.size();
    auto end = body.find('"', pos);
    if (end == std::string::npos) {
      break;
    }
    out.push_back(body.substr(pos, end - pos));
  }
  return out;
}

class RequestLogBufferTest : public testing::Test {
 protected:
  RequestLogBufferTest() : sys_(test::actor_config()) {
    auto s = storage::key_store::open(tmp_.path() + "/data");
    EXPECT_TRUE(s) << s.error().message;
    store_ = std::make_shared<switchable_store>(std::shared_ptr<storage::key_store>(std::move(*s)));
  }

  ~RequestLogBufferTest() override {
    store_->set_mode(append_mode::pass);  // a blocked writer could not stop
    self_.reset();  // a scoped actor counts as running (0.17.6 ignores its `hide` argument)
    if (metrics_) {
      caf::anon_send_exit(metrics_, caf::exit_reason::user_shutdown);
    }
    sys_.await_all_actors_done();
  }

  void start(std::size_t max_buffered) {
    metrics_ = spawn_metrics_actor(sys_, reg_, store_, config::request_log_config{}, max_buffered);
  }

  /// Sends record `i` of `user` (created `i` µs after the test began, so listings are ordered).
  void record(int i) {
    auto r = std::make_shared<request_record>();
    r->id = id_of(i);
    r->user_id = user;
    r->created_us = base_us_ + i;
    r->model = "ib/cheap";
    r->status = 200;
    caf::anon_send(metrics_, record_atom::value, std::move(r));
  }

  void records(int from, int to) {
    for (int i = from; i < to; ++i) {
      record(i);
    }
  }

  using pending_list = decltype(std::declval<caf::scoped_actor&>()->request(
      std::declval<metrics_supervisor_handle&>(), limit, listreq_atom::value, std::string{},
      std::uint64_t{}, std::string{}));

  /// Asks for the listing (GET /v1/requests) without waiting: the metrics actor hands its batch
  /// to the writer first, so this also ends a batch.
  pending_list list_async(std::chrono::seconds timeout = limit) {
    return self()->request(metrics_, timeout, listreq_atom::value, user, std::uint64_t{100},
                           std::string{});
  }

  /// The listing, waited for (bounded). Answered by the writer after every record sent before
  /// it, so it is also a barrier: the writer has taken every earlier record.
  std::optional<std::string> list() {
    std::optional<std::string> out;
    list_async().receive([&](std::string& body) { out = std::move(body); },
                         [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  /// `inferbridge_request_records_dropped_total` as exposed, or -1 when it is missing.
  double dropped() const {
    const std::string name = "inferbridge_request_records_dropped_total ";
    auto text = reg_->serialize();
    for (std::size_t pos = 0; pos < text.size();) {
      auto end = text.find('\n', pos);
      if (end == std::string::npos) {
        end = text.size();
      }
      if (text.compare(pos, name.size(), name) == 0) {
        return std::stod(text.substr(pos + name.size(), end - pos - name.size()));
      }
      pos = end + 1;
    }
    return -1;
  }

  /// Polls `pred` until it holds or `timeout` passes.
  static bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= end) {
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  caf::scoped_actor& self() { return *self_; }

  storage::test::temp_dir tmp_;
  caf::actor_system sys_;
  std::optional<caf::scoped_actor> self_{std::in_place, sys_};
  std::shared_ptr<switchable_store> store_;
  std::shared_ptr<metrics::registry> reg_ = std::make_shared<metrics::registry>();
  metrics_supervisor_handle metrics_;
  /// Now (retention drops records older than 30 days), in µs.
  std::int64_t base_us_ = static_cast<std::int64_t>(std::time(nullptr)) * 1'000'000;
};

TEST_F(RequestLogBufferTest, RecordsSentWhileTheStoreIsAwayAreWrittenInOrderWhenItIsBack) {
  start(100);
  store_->set_mode(append_mode::unavailable);
  records(0, 10);
  auto during = list();
  ASSERT_TRUE(during);
  EXPECT_TRUE(listed_ids(*during).empty()) << *during;
  records(10, 20);
  ASSERT_TRUE(list());
  // The writer tried and was refused; nothing is lost under the bound.
  EXPECT_GE(store_->refusals(), 1u);
  EXPECT_TRUE(store_->written().empty());
  EXPECT_EQ(dropped(), 0);
  // The writer keeps retrying while the store is away (its 1 s timer).
  const auto refused = store_->refusals();
  EXPECT_TRUE(store_->await_refusals(refused + 1, retry_limit)) << "the writer did not retry";

  store_->set_mode(append_mode::pass);
  records(20, 25);  // newer records, sent after the store is back: after the backlog
  ASSERT_TRUE(store_->await_written(25, retry_limit))
      << "the backlog was not written within " << retry_limit.count() << " s; written "
      << store_->written().size();
  EXPECT_EQ(store_->written(), ids(0, 25)) << "the backlog must be written first, in order";

  auto after = list();
  ASSERT_TRUE(after);
  auto listed = listed_ids(*after);
  auto expected = ids(0, 25);
  std::reverse(expected.begin(), expected.end());  // newest first
  EXPECT_EQ(listed, expected) << *after;
  EXPECT_EQ(dropped(), 0);
}

TEST_F(RequestLogBufferTest, BeyondTheBoundTheOldestRecordsAreDroppedAndCounted) {
  start(10);
  store_->set_mode(append_mode::unavailable);
  // 25 records in batches of 5, each taken by the writer before the next is sent (the listing
  // is the barrier), so none is dropped by the metrics actor's queue bound: the writer keeps the
  // newest 10 and drops the oldest 15.
  for (int b = 0; b < 5; ++b) {
    records(b * 5, b * 5 + 5);
    ASSERT_TRUE(list());
  }
  EXPECT_TRUE(store_->written().empty());
  EXPECT_EQ(dropped(), 15);

  store_->set_mode(append_mode::pass);
  ASSERT_TRUE(store_->await_written(10, retry_limit))
      << "the backlog was not written within " << retry_limit.count() << " s";
  EXPECT_EQ(store_->written(), ids(15, 25)) << "the newest 10 are kept, in order";
  auto after = list();
  ASSERT_TRUE(after);
  auto expected = ids(15, 25);
  std::reverse(expected.begin(), expected.end());
  EXPECT_EQ(listed_ids(*after), expected) << *after;
  EXPECT_EQ(dropped(), 15);
}

TEST_F(RequestLogBufferTest, ASlowStoreMakesTheMetricsActorDropWholeBatchesBeyondTheBound) {
  start(10);
  store_->set_mode(append_mode::block);
  // r0 alone, handed over by the 100 ms flush timer: the writer takes it (the queue is empty
  // again) and blocks in the store. Its timer has fired, so the next one starts with the next
  // batch, long after that batch is complete.
  record(0);
  ASSERT_TRUE(store_->await_blocked(1, limit)) << "the writer never reached the store";
  // Each batch ends with a listing (answered once the store is unblocked).
  std::vector<pending_list> pending;
  const auto wait = std::chrono::seconds(30);
  records(1, 7);  // 6 queued
  pending.push_back(list_async(wait));
  records(7, 10);  // 9 queued
  pending.push_back(list_async(wait));
  records(10, 13);  // 9 + 3 > 10: the whole batch is dropped (not 1 kept and 2 dropped)
  pending.push_back(list_async(wait));
  record(13);  // 9 + 1 = 10: fits exactly
  pending.push_back(list_async(wait));
  record(14);  // 10 + 1 > 10: dropped
  pending.push_back(list_async(wait));
  EXPECT_TRUE(wait_until([&] { return dropped() >= 4; }, limit)) << "dropped " << dropped();
  EXPECT_EQ(dropped(), 4);
  EXPECT_TRUE(store_->written().empty());

  store_->set_mode(append_mode::pass);
  std::size_t answered = 0;
  for (auto& p : pending) {
    p.receive([&](std::string&) { ++answered; },
              [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
  }
  EXPECT_EQ(answered, pending.size());
  // Every listing came after the batches before it: all that was queued is written, in order.
  auto expected = ids(0, 10);
  expected.push_back(id_of(13));
  EXPECT_EQ(store_->written(), expected);
  EXPECT_EQ(dropped(), 4);
}

// Records the writer keeps while the store is away and still cannot write when it stops
// (shutdown) are counted in `inferbridge_request_records_dropped_total`, as every dropped one is.
TEST_F(RequestLogBufferTest, RecordsKeptAtShutdownAreCountedAsDropped) {
  start(10);
  store_->set_mode(append_mode::unavailable);
  records(0, 5);
  ASSERT_TRUE(list());  // the writer holds the 5 records
  EXPECT_EQ(dropped(), 0);
  log_writer_handle writer;
  self()
      ->request(metrics_, limit, writer_atom::value)
      .receive([&](log_writer_handle& w) { writer = std::move(w); },
               [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
  ASSERT_TRUE(writer);
  self()->monitor(writer);
  caf::anon_send_exit(metrics_, caf::exit_reason::user_shutdown);
  bool down = false;
  self()->receive([&](caf::down_msg& dm) { down = dm.source == writer.address(); },
                  caf::after(limit) >> [] {});
  ASSERT_TRUE(down) << "the writer did not stop";
  EXPECT_TRUE(store_->written().empty());
  EXPECT_EQ(dropped(), 5) << "records lost at shutdown must be counted";
}

}  // namespace
}  // namespace ib::actors
