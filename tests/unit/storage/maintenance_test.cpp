// Master-key rotation in batches, compaction and a full map (issue 18).
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.hpp"
#include "storage/key_store.hpp"
#include "tests/unit/storage/key_store_fixture.hpp"

namespace ib::storage {
namespace {

using test::t0;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string provider_name(int i) {
  std::string s = "p";
  s += static_cast<char>('0' + i / 10);
  s += static_cast<char>('0' + i % 10);
  return s;
}

/// Re-encryption stand-in: an `old-` token becomes `new-`; a `new-` one is kept.
result<std::optional<std::string>> to_new(const provider_key_record& rec) {
  if (rec.token.starts_with("new-")) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{"new-" + rec.token.substr(4)};
}

class MaintenanceTest : public test::store_fixture {
 protected:
  /// A user with `n` provider keys whose tokens are `old-<provider>`.
  std::string user_with_old_keys(int n) {
    const auto u = make_user("rotate@example.com");
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(
          store_->put_provider_key(u.id, key_rec(provider_name(i), "old-" + provider_name(i))));
    }
    return u.id;
  }

  std::vector<std::string> tokens(const std::string& user) {
    std::vector<std::string> out;
    auto keys = store_->list_provider_keys(user);
    EXPECT_TRUE(keys);
    for (const auto& k : *keys) {
      out.push_back(k.token);
    }
    return out;
  }
};

// -- batches ----------------------------------------------------------------------------------

TEST_F(MaintenanceTest, BatchesAreBoundedAndWalkEveryKeyOnce) {
  const auto user = user_with_old_keys(25);
  auto count = store_->count_provider_keys();
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 25U);
  std::vector<std::size_t> scanned;
  std::string after;
  for (int guard = 0; guard < 10; ++guard) {
    auto b = store_->rewrite_provider_tokens_batch(after, 10, to_new);
    ASSERT_TRUE(b) << b.error().message;
    scanned.push_back(b->scanned);
    EXPECT_EQ(b->rewritten, b->scanned);
    if (!b->resume_after) {
      break;
    }
    after = *b->resume_after;
  }
  EXPECT_EQ(scanned, (std::vector<std::size_t>{10, 10, 5}));
  for (const auto& t : tokens(user)) {
    EXPECT_TRUE(t.starts_with("new-")) << t;
  }
}

TEST_F(MaintenanceTest, ABatchEndingOnTheLastKeyReportsTheEnd) {
  user_with_old_keys(10);
  auto b = store_->rewrite_provider_tokens_batch("", 10, to_new);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->scanned, 10U);
  EXPECT_FALSE(b->resume_after);
}

TEST_F(MaintenanceTest, EachBatchIsCommittedSoARerunOnlyFinishesTheRest) {
  const auto user = user_with_old_keys(25);
  auto first = store_->rewrite_provider_tokens_batch("", 10, to_new);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->resume_after);
  // "Killed" here: the store is closed and reopened, and the rotation starts over.
  open();
  std::size_t rewritten = 0;
  std::size_t scanned = 0;
  std::string after;
  for (int guard = 0; guard < 10; ++guard) {
    auto b = store_->rewrite_provider_tokens_batch(after, 7, to_new);
    ASSERT_TRUE(b);
    rewritten += b->rewritten;
    scanned += b->scanned;
    if (!b->resume_after) {
      break;
    }
    after = *b->resume_after;
  }
  EXPECT_EQ(scanned, 25U);
  EXPECT_EQ(rewritten, 15U);
  EXPECT_EQ(tokens(user).size(), 25U);
}

TEST_F(MaintenanceTest, AFailingTokenAbortsItsWholeBatch) {
  const auto user = user_with_old_keys(5);
  int calls = 0;
  auto b = store_->rewrite_provider_tokens_batch(
      "", 10, [&](const provider_key_record& rec) -> result<std::optional<std::string>> {
        if (++calls == 4) {
          return error{errc::crypto, "does not decrypt"};
        }
        return to_new(rec);
      });
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::crypto);
  for (const auto& t : tokens(user)) {
    EXPECT_TRUE(t.starts_with("old-")) << t;
  }
}

TEST_F(MaintenanceTest, BeforeCommitSeesTheBatchUncommitted) {
  const auto user = user_with_old_keys(3);
  bool ran = false;
  auto b = store_->rewrite_provider_tokens_batch("", 10, to_new, [&] {
    ran = true;
    // Another reader still sees the old tokens: the batch is not committed yet.
    for (const auto& t : tokens(user)) {
      EXPECT_TRUE(t.starts_with("old-")) << t;
    }
  });
  ASSERT_TRUE(b);
  EXPECT_TRUE(ran);
  for (const auto& t : tokens(user)) {
    EXPECT_TRUE(t.starts_with("new-")) << t;
  }
}

// -- compaction -------------------------------------------------------------------------------

TEST_F(MaintenanceTest, CompactionDropsTheBytesOfReplacedAndDeletedValues) {
  const auto u = make_user("compact@example.com");
  const std::string replaced = "OLD-TOKEN-REPLACED-7f3a9c1e5b2d8f4a";
  const std::string deleted = "OLD-TOKEN-DELETED-0c9b8a7f6e5d4c3b";
  ASSERT_TRUE(store_->put_provider_key(u.id, key_rec("openai", replaced)));
  ASSERT_TRUE(store_->put_provider_key(u.id, key_rec("groq", deleted)));
  ASSERT_TRUE(store_->put_provider_key(u.id, key_rec("openai", "NEW-TOKEN-openai-00000000000000")));
  ASSERT_TRUE(store_->delete_provider_key(u.id, "groq"));
  store_.reset();
  const std::string data = dir_ + "/data.mdb";
  // LMDB keeps freed pages as they were: the old bytes are still in the file.
  const std::string before = read_file(data);
  ASSERT_NE(before.find(replaced), std::string::npos);
  ASSERT_NE(before.find(deleted), std::string::npos);

  auto c = key_store::compact(dir_);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->bytes_before, before.size());
  EXPECT_LT(c->bytes_after, c->bytes_before);
  const std::string after = read_file(data);
  EXPECT_EQ(after.size(), c->bytes_after);
  EXPECT_EQ(after.find(replaced), std::string::npos);
  EXPECT_EQ(after.find(deleted), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data.mdb.compact"));

  // Everything live survived, and the store takes writes again.
  open();
  auto keys = store_->list_provider_keys(u.id);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1U);
  EXPECT_EQ((*keys)[0].token, "NEW-TOKEN-openai-00000000000000");
  auto found = store_->find_user(u.id);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((**found).email, "compact@example.com");
  EXPECT_TRUE(store_->put_provider_key(u.id, key_rec("groq", "again")));
  make_user("second@example.com");
}

TEST_F(MaintenanceTest, CompactionIsRefusedWhileTheStoreIsOpenInThisProcess) {
  auto c = key_store::compact(dir_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::storage);
  EXPECT_NE(c.error().message.find("already open"), std::string::npos);
}

TEST_F(MaintenanceTest, CompactionOfADirWithoutAStoreFails) {
  auto c = key_store::compact(tmp_.path() + "/nothing-here");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::storage);
}

TEST_F(MaintenanceTest, ALeftoverOfAKilledCompactionIsRemoved) {
  { std::ofstream(dir_ + "/data.mdb.compact") << "OLD-TOKEN-IN-A-LEFTOVER"; }
  ASSERT_TRUE(key_store::remove_compact_leftover(dir_));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data.mdb.compact"));
  EXPECT_TRUE(key_store::remove_compact_leftover(dir_));  // nothing there: fine
}

TEST_F(MaintenanceTest, AnotherProcessHoldingTheStoreIsSeenAndCompactionRefused) {
  make_user("live@example.com");
  store_.reset();
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "running gateway": holds the environment open until told to stop.
    ::close(ready[0]);
    ::close(release[1]);
    auto s = key_store::open(dir_);
    const char ok = s ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    char c = 0;
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, '1');

  auto c = key_store::compact(dir_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::conflict);
  EXPECT_NE(c.error().message.find(std::to_string(child)), std::string::npos) << c.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data.mdb.compact"));

  open();
  auto other = store_->other_process();
  ASSERT_TRUE(other);
  ASSERT_TRUE(*other);
  EXPECT_EQ(**other, child);

  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(ready[0]);
  other = store_->other_process();
  ASSERT_TRUE(other);
  EXPECT_FALSE(*other);
  // Our own open environment is not "another process", and the probe did not drop our locks.
  store_.reset();
  EXPECT_TRUE(key_store::compact(dir_));
}

// -- a full map ---------------------------------------------------------------------------------

TEST_F(MaintenanceTest, AFullMapRefusesWritesWith507AndKeepsServingReads) {
  open(std::size_t{64} << 10);  // 64 KiB: a few hundred users
  const auto first = make_user("first@example.com");
  result<user_record> last = make_user("second@example.com");
  int made = 1;
  for (; made < 100'000 && last; ++made) {
    last = store_->create_user("u" + std::to_string(made) + "@example.com",
                               sha256(new_gateway_key()), t0);
  }
  ASSERT_FALSE(last) << "the map never filled";
  EXPECT_EQ(last.error().code, errc::insufficient_storage);
  EXPECT_EQ(http_status(last.error().code), 507);
  EXPECT_EQ(last.error().detail_code, "insufficient_storage");
  EXPECT_NE(last.error().message.find("storage is full"), std::string::npos);
  // Reads still work, and so does a write that needs no new page... or is refused the same way.
  auto found = store_->find_user(first.id);
  ASSERT_TRUE(found && *found);
  auto put = store_->put_provider_key(first.id, key_rec("openai", std::string(3000, 'x')));
  if (!put) {
    EXPECT_EQ(put.error().code, errc::insufficient_storage);
  }
  EXPECT_TRUE(store_->list_provider_keys(first.id));
}

}  // namespace
}  // namespace ib::storage
