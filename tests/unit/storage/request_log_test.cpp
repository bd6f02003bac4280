#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/key_store.hpp"
#include "storage/lmdb_env.hpp"
#include "tests/unit/storage/key_store_fixture.hpp"

namespace ib::storage {
namespace {

using test::strings;
using test::t0;

class RequestLogTest : public test::store_fixture {
 protected:
  /// Expects `r` to be its user's only record, listed as `to_json` shows it.
  void expect_only_record(const request_record& r) {
    auto p = store_->list_requests(r.user_id, 10, "");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->records_json.size(), 1U);
    EXPECT_EQ(p->records_json[0], to_json(r));
  }
};

// -- request log --------------------------------------------------------------------------------

TEST_F(RequestLogTest, ListRequestsPagesNewestFirst) {
  std::vector<request_record> recs;
  for (int i = 1; i <= 5; ++i) {
    recs.push_back(req("usr_a", "req_" + std::to_string(i), t0 + i));
  }
  ASSERT_TRUE(store_->append_requests(recs, 0, 0, t0));

  auto p1 = store_->list_requests("usr_a", 2, "");
  ASSERT_TRUE(p1);
  EXPECT_EQ(ids(*p1), (strings{"req_5", "req_4"}));
  EXPECT_TRUE(p1->has_more);
  auto p2 = store_->list_requests("usr_a", 2, "req_4");
  ASSERT_TRUE(p2);
  EXPECT_EQ(ids(*p2), (strings{"req_3", "req_2"}));
  EXPECT_TRUE(p2->has_more);
  auto p3 = store_->list_requests("usr_a", 2, "req_2");
  ASSERT_TRUE(p3);
  EXPECT_EQ(ids(*p3), strings{"req_1"});
  EXPECT_FALSE(p3->has_more);
  auto exact = store_->list_requests("usr_a", 5, "");
  EXPECT_EQ(exact->records_json.size(), 5U);
  EXPECT_FALSE(exact->has_more);
  auto last = store_->list_requests("usr_a", 2, "req_1");
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->records_json.empty());
  EXPECT_FALSE(last->has_more);
  auto none = store_->list_requests("usr_a", 0, "");
  EXPECT_TRUE(none->records_json.empty());
  EXPECT_TRUE(none->has_more);
}

TEST_F(RequestLogTest, ListRequestsReturnsTheRecordJson) {
  auto r = req("usr_a", "req_1", t0);
  r.tokens = usage{3, 4, 7, 0};
  ASSERT_TRUE(store_->append_requests({r}, 0, 0, t0));
  expect_only_record(r);
}

TEST_F(RequestLogTest, ListRequestsBeforeAnUnknownIdIsAnError) {
  ASSERT_TRUE(
      store_->append_requests({req("usr_a", "req_1", t0), req("usr_b", "req_2", t0)}, 0, 0, t0));
  auto p = store_->list_requests("usr_a", 10, "req_missing");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, errc::invalid_request);
  // Another user's request id is unknown too.
  EXPECT_FALSE(store_->list_requests("usr_a", 10, "req_2"));
}

TEST_F(RequestLogTest, RequestsAreIsolatedEvenWhenUserIdsSharePrefixes) {
  ASSERT_TRUE(store_->append_requests({req("usr_a", "req_1", t0), req("usr_ab", "req_2", t0 + 1),
                                       req("usr_", "req_3", t0 + 2), req("usr_b", "req_4", t0)},
                                      0, 0, t0));
  EXPECT_EQ(all_ids("usr_a"), strings{"req_1"});
  EXPECT_EQ(all_ids("usr_ab"), strings{"req_2"});
  EXPECT_EQ(all_ids("usr_"), strings{"req_3"});
  EXPECT_EQ(all_ids("usr_b"), strings{"req_4"});
  EXPECT_TRUE(all_ids("usr_c").empty());
  EXPECT_TRUE(all_ids("").empty());
}

TEST_F(RequestLogTest, RetentionKeepsTheNewestRecordsPerUser) {
  std::vector<request_record> recs;
  for (int i = 1; i <= 5; ++i) {
    recs.push_back(req("usr_a", "req_a" + std::to_string(i), t0 + i));
  }
  recs.push_back(req("usr_b", "req_b1", t0));
  ASSERT_TRUE(store_->append_requests(recs, 3, 0, t0));
  EXPECT_EQ(all_ids("usr_a"), (strings{"req_a5", "req_a4", "req_a3"}));
  EXPECT_EQ(all_ids("usr_b"), strings{"req_b1"});
  ASSERT_TRUE(store_->append_requests({req("usr_a", "req_a6", t0 + 6)}, 3, 0, t0));
  EXPECT_EQ(all_ids("usr_a"), (strings{"req_a6", "req_a5", "req_a4"}));
}

TEST_F(RequestLogTest, ARecordWrittenAgainIsNotCountedTwice) {
  // The same (user, time, id) written again replaces itself; retention must still keep the
  // newest three, not drop one too many because the count ran high.
  std::vector<request_record> recs;
  for (int i = 1; i <= 3; ++i) {
    recs.push_back(req("usr_a", "req_a" + std::to_string(i), t0 + i));
  }
  ASSERT_TRUE(store_->append_requests(recs, 3, 0, t0));
  ASSERT_TRUE(store_->append_requests({recs[2], recs[2]}, 3, 0, t0));
  EXPECT_EQ(all_ids("usr_a"), (strings{"req_a3", "req_a2", "req_a1"}));
  ASSERT_TRUE(store_->append_requests({req("usr_a", "req_a4", t0 + 4)}, 3, 0, t0));
  EXPECT_EQ(all_ids("usr_a"), (strings{"req_a4", "req_a3", "req_a2"}));
}

TEST_F(RequestLogTest, RetentionByAgeCoversEveryUser) {
  ASSERT_TRUE(store_->append_requests(
      {req("usr_b", "req_old", t0 - 100), req("usr_b", "req_edge", t0 - 50)}, 0, 0, t0));
  // usr_a's append also drops usr_b's record older than now - 50 s (strictly older only).
  ASSERT_TRUE(store_->append_requests({req("usr_a", "req_new", t0)}, 0, 50, t0));
  EXPECT_EQ(all_ids("usr_b"), strings{"req_edge"});
  EXPECT_EQ(all_ids("usr_a"), strings{"req_new"});
  ASSERT_TRUE(store_->append_requests({}, 0, 50, t0 + 1));
  EXPECT_TRUE(all_ids("usr_b").empty());
  EXPECT_EQ(all_ids("usr_a"), strings{"req_new"});
  // After a count trim, the age trim does not stumble over records already gone.
  ASSERT_TRUE(store_->append_requests(
      {req("usr_a", "req_n2", t0 + 2), req("usr_a", "req_n3", t0 + 3)}, 1, 50, t0 + 40));
  EXPECT_EQ(all_ids("usr_a"), strings{"req_n3"});
}

TEST_F(RequestLogTest, RetentionCountsStayExactAcrossManyBatchesAndAgeTrims) {
  // Many small batches: the per-user count drives the trim (no scan of the kept records).
  int n = 0;
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<request_record> recs;
    for (int i = 0; i < 3; ++i) {
      ++n;
      recs.push_back(req("usr_c", "req_c" + std::to_string(1000 + n), t0 + n));
    }
    ASSERT_TRUE(store_->append_requests(recs, 5, 0, t0));
    ASSERT_EQ(all_ids("usr_c").size(), std::min(5, n)) << "after batch " << batch;
  }
  EXPECT_EQ(all_ids("usr_c").front(), "req_c1120");
  // An age trim drops some; the count follows, so the next count trim keeps exactly 5 again.
  ASSERT_TRUE(store_->append_requests({}, 5, 2, t0 + 119));  // keeps records at >= t0 + 117
  EXPECT_EQ(all_ids("usr_c").size(), 4u);
  ASSERT_TRUE(store_->append_requests({req("usr_c", "req_c2000", t0 + 200)}, 5, 0, t0));
  EXPECT_EQ(all_ids("usr_c").size(), 5u);
  ASSERT_TRUE(store_->append_requests({req("usr_c", "req_c2001", t0 + 201)}, 5, 0, t0));
  EXPECT_EQ(all_ids("usr_c").size(), 5u);
}

TEST_F(RequestLogTest, InvalidRequestRecordsRejectTheBatch) {
  auto r = store_->append_requests({req("usr_a", "req_1", t0), req("", "req_2", t0)}, 0, 0, t0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_request);
  EXPECT_TRUE(all_ids("usr_a").empty());
  EXPECT_FALSE(store_->append_requests({req("usr_a", std::string(300, 'x'), t0)}, 0, 0, t0));
}

TEST_F(RequestLogTest, ARecordWrittenAgainReplacesItself) {
  auto r = req("usr_a", "req_1", t0);
  ASSERT_TRUE(store_->append_requests({r}, 0, 0, t0));
  r.status = 502;
  r.provider.clear();
  r.tokens = usage{1, 2, 3, 0};
  ASSERT_TRUE(store_->append_requests({r}, 0, 0, t0));
  expect_only_record(r);
}

/// Writes `value` as the record of (`user`, `created_s`, `id`) straight into the store's
/// `requests` table, as a store written by an earlier version (or damaged) would hold it.
void put_raw_record(const std::string& dir, const std::string& user, std::int64_t created_s,
                    const std::string& id, const std::string& value) {
  auto e = lmdb::env::open(dir, std::size_t{1} << 32, 16, MDB_NOTLS);
  ASSERT_TRUE(e) << e.error().message;
  auto t = lmdb::txn::begin(e->get(), true);
  ASSERT_TRUE(t);
  auto dbi = t->open_dbi("requests", 0);
  ASSERT_TRUE(dbi);
  std::string key = user + '\0';
  const auto created_us = static_cast<std::uint64_t>(created_s * test::us);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((created_us >> shift) & 0xff));
  }
  key += id;
  ASSERT_TRUE(t->put(*dbi, key, value));
  ASSERT_TRUE(t->commit());
}

TEST_F(RequestLogTest, RecordsStoredAsJsonByAnEarlierVersionAreListedAsTheyAre) {
  auto stored = req("usr_a", "req_new", t0 + 1);
  ASSERT_TRUE(store_->append_requests({stored}, 0, 0, t0));
  auto old = req("usr_a", "req_old", t0);
  old.stream = true;
  store_.reset();
  put_raw_record(dir_, "usr_a", t0, "req_old", to_json(old));
  open();
  auto p = store_->list_requests("usr_a", 10, "");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->records_json, (strings{to_json(stored), to_json(old)}));
}

TEST_F(RequestLogTest, ADamagedRecordIsAStorageErrorNotACrash) {
  ASSERT_TRUE(store_->append_requests({req("usr_a", "req_1", t0)}, 0, 0, t0));
  store_.reset();
  put_raw_record(dir_, "usr_a", t0 + 1, "req_2", std::string("\x01\x05ib/ch", 7));
  open();
  auto p = store_->list_requests("usr_a", 10, "");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, errc::storage);
  // The page before it still lists.
  auto older = store_->list_requests("usr_a", 10, "req_2");
  ASSERT_TRUE(older);
  EXPECT_EQ(ids(*older), strings{"req_1"});
}

}  // namespace
}  // namespace ib::storage
