#include "storage/key_store.hpp"

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/unit/storage/key_store_fixture.hpp"

namespace ib::storage {
namespace {

using test::strings;
using test::t0;

class KeyStoreTest : public test::store_fixture {};

// -- opening ----------------------------------------------------------------------------------

TEST_F(KeyStoreTest, OpenCreatesThePrivateDataDir) {
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  EXPECT_EQ(store_->dir(), dir_);
}

TEST_F(KeyStoreTest, OpenCreatesMissingParents) {
  store_.reset();
  auto s = key_store::open(tmp_.path() + "/a/b/data/");
  ASSERT_TRUE(s) << s.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((tmp_.path() + "/a/b/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
}

TEST_F(KeyStoreTest, SecondOpenOfTheSameDirIsRefused) {
  auto again = key_store::open(dir_ + "/");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::storage);
  store_.reset();
  EXPECT_TRUE(key_store::open(dir_));
}

TEST_F(KeyStoreTest, OpenOnAFileFails) {
  std::ofstream{tmp_.path() + "/file"} << "x";
  auto s = key_store::open(tmp_.path() + "/file");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::storage);
}

// -- users --------------------------------------------------------------------------------------

TEST_F(KeyStoreTest, CreateUserThenFindItByIdAndKeyHash) {
  const auto key = new_gateway_key();
  auto u = store_->create_user("Ada@Example.com", sha256(key), t0);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_TRUE(u->id.starts_with("usr_"));
  EXPECT_EQ(u->id.size(), 28U);
  EXPECT_EQ(u->email, "Ada@Example.com");
  EXPECT_EQ(u->created, t0);

  auto found = store_->find_user(u->id);
  ASSERT_TRUE(found);
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->email, "Ada@Example.com");
  EXPECT_EQ((*found)->created, t0);

  auto owner = store_->user_for_key_hash(sha256(key));
  ASSERT_TRUE(owner);
  EXPECT_EQ(*owner, std::optional<std::string>{u->id});
  auto nobody = store_->user_for_key_hash(sha256(new_gateway_key()));
  ASSERT_TRUE(nobody);
  EXPECT_FALSE(*nobody);

  auto missing = store_->find_user("usr_nobody");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  EXPECT_FALSE(*store_->find_user(""));
  EXPECT_FALSE(*store_->find_user(std::string{"usr\0x", 5}));
}

TEST_F(KeyStoreTest, EmailConflictIsCaseInsensitiveAndWritesNothing) {
  const auto first = make_user("Ada@Example.com");
  auto again = store_->create_user("ada@EXAMPLE.COM", sha256(new_gateway_key()), t0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::conflict);
  EXPECT_EQ(again.error().message, "email already registered");
  int keys = 0;
  ASSERT_TRUE(store_->for_each_api_key([&](const sha256_digest&, std::string_view id) {
    ++keys;
    EXPECT_EQ(id, first.id);
  }));
  EXPECT_EQ(keys, 1);
  EXPECT_TRUE(store_->create_user("bob@example.com", sha256(new_gateway_key()), t0));
}

TEST_F(KeyStoreTest, BadEmailIsRejected) {
  auto empty = store_->create_user("", sha256("k"), t0);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::invalid_request);
  EXPECT_FALSE(store_->create_user(std::string{"a\0b@x", 5}, sha256("k"), t0));
  EXPECT_FALSE(store_->create_user(std::string(600, 'a'), sha256("k"), t0));
}

TEST_F(KeyStoreTest, ConcurrentSignUpsWithOneEmailHaveOneWinner) {
  std::atomic<int> ok{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 5; ++j) {
        auto u = store_->create_user(
            j == 0 ? "same@example.com"
                   : "u" + std::to_string(i) + "_" + std::to_string(j) + "@example.com",
            sha256(new_gateway_key()), t0);
        if (u) {
          ++ok;
          auto found = store_->find_user(u->id);
          EXPECT_TRUE(found && *found);
        } else if (u.error().code == errc::conflict) {
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 1 + 8 * 4);
  EXPECT_EQ(conflicts.load(), 7);
}

// -- provider keys ----------------------------------------------------------------------------

TEST_F(KeyStoreTest, PutListReplaceAndDeleteProviderKeys) {
  const auto u = make_user("a@example.com");
  auto put = store_->put_provider_key(u.id, key_rec("openai", "tok1"));
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_FALSE(*put);
  ASSERT_TRUE(store_->put_provider_key(u.id, key_rec("groq", "tok2")));
  auto replaced = store_->put_provider_key(u.id, key_rec("openai", "tok3"));
  ASSERT_TRUE(replaced);
  EXPECT_TRUE(*replaced);

  auto list = store_->list_provider_keys(u.id);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ((*list)[0].provider, "groq");
  EXPECT_EQ((*list)[0].token, "tok2");
  EXPECT_EQ((*list)[1].provider, "openai");
  EXPECT_EQ((*list)[1].token, "tok3");
  EXPECT_EQ((*list)[1].hint, "sk-\u2026wxyz");
  EXPECT_EQ((*list)[1].created, t0);

  auto del = store_->delete_provider_key(u.id, "openai");
  ASSERT_TRUE(del);
  EXPECT_TRUE(*del);
  del = store_->delete_provider_key(u.id, "openai");
  ASSERT_TRUE(del);
  EXPECT_FALSE(*del);
  EXPECT_EQ(store_->list_provider_keys(u.id)->size(), 1U);
}

TEST_F(KeyStoreTest, UsersCannotSeeOrDeleteEachOthersKeys) {
  const auto a = make_user("a@example.com");
  const auto b = make_user("b@example.com");
  ASSERT_TRUE(store_->put_provider_key(a.id, key_rec("openai", "a-token")));
  auto b_list = store_->list_provider_keys(b.id);
  ASSERT_TRUE(b_list);
  EXPECT_TRUE(b_list->empty());
  EXPECT_FALSE(*store_->delete_provider_key(b.id, "openai"));
  ASSERT_EQ(store_->list_provider_keys(a.id)->size(), 1U);
  EXPECT_EQ(store_->list_provider_keys(a.id)->front().token, "a-token");
  // B storing the same provider does not touch A's key.
  EXPECT_FALSE(*store_->put_provider_key(b.id, key_rec("openai", "b-token")));
  EXPECT_EQ(store_->list_provider_keys(a.id)->front().token, "a-token");
  EXPECT_EQ(store_->list_provider_keys(b.id)->front().token, "b-token");
}

TEST_F(KeyStoreTest, ProviderKeyNeedsAnExistingUserAndAValidProvider) {
  auto r = store_->put_provider_key("usr_nobody", key_rec("openai", "t"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_found);
  const auto u = make_user("a@example.com");
  auto bad = store_->put_provider_key(u.id, key_rec(std::string{"op\0enai", 7}, "t"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::invalid_request);
  EXPECT_FALSE(store_->put_provider_key(u.id, key_rec("", "t")));
  EXPECT_FALSE(*store_->delete_provider_key(u.id, ""));
}

TEST_F(KeyStoreTest, ForEachVisitsEveryKey) {
  const auto a = make_user("a@example.com");
  const auto b = make_user("b@example.com");
  ASSERT_TRUE(store_->put_provider_key(a.id, key_rec("openai", "t1")));
  ASSERT_TRUE(store_->put_provider_key(b.id, key_rec("groq", "t2")));
  std::map<std::string, std::string> seen;
  ASSERT_TRUE(
      store_->for_each_provider_key([&](std::string_view user, const provider_key_record& rec) {
        seen[std::string{user} + "/" + rec.provider] = rec.token;
      }));
  EXPECT_EQ(seen,
            (std::map<std::string, std::string>{{a.id + "/openai", "t1"}, {b.id + "/groq", "t2"}}));
  std::set<std::string> users;
  ASSERT_TRUE(store_->for_each_api_key(
      [&](const sha256_digest&, std::string_view user) { users.emplace(user); }));
  EXPECT_EQ(users, (std::set<std::string>{a.id, b.id}));
}

TEST_F(KeyStoreTest, RewriteProviderTokensIsAllOrNothing) {
  const auto a = make_user("a@example.com");
  const auto b = make_user("b@example.com");
  ASSERT_TRUE(store_->put_provider_key(a.id, key_rec("openai", "old1")));
  ASSERT_TRUE(store_->put_provider_key(b.id, key_rec("groq", "old2")));

  int calls = 0;
  auto failed =
      store_->rewrite_provider_tokens([&](const provider_key_record&) -> result<std::string> {
        if (++calls == 2) {
          return error{errc::crypto, "cannot decrypt"};
        }
        return std::string{"new"};
      });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, errc::crypto);
  EXPECT_EQ(store_->list_provider_keys(a.id)->front().token, "old1");
  EXPECT_EQ(store_->list_provider_keys(b.id)->front().token, "old2");

  auto done = store_->rewrite_provider_tokens(
      [](const provider_key_record& rec) -> result<std::string> { return "new-" + rec.token; });
  ASSERT_TRUE(done);
  EXPECT_EQ(*done, 2U);
  EXPECT_EQ(store_->list_provider_keys(a.id)->front().token, "new-old1");
  EXPECT_EQ(store_->list_provider_keys(b.id)->front().token, "new-old2");
  EXPECT_EQ(store_->list_provider_keys(b.id)->front().hint, "sk-\u2026wxyz");
}

TEST_F(KeyStoreTest, EverythingPersistsAcrossReopen) {
  const auto key = new_gateway_key();
  auto u = store_->create_user("a@example.com", sha256(key), t0);
  ASSERT_TRUE(u);
  ASSERT_TRUE(store_->put_provider_key(u->id, key_rec("openai", "tok")));
  ASSERT_TRUE(store_->append_requests({req(u->id, "req_1", t0)}, 100, 0, t0));

  open();
  EXPECT_EQ(*store_->user_for_key_hash(sha256(key)), std::optional<std::string>{u->id});
  EXPECT_EQ((*store_->find_user(u->id))->email, "a@example.com");
  EXPECT_EQ(store_->list_provider_keys(u->id)->front().token, "tok");
  EXPECT_EQ(all_ids(u->id), strings{"req_1"});
  EXPECT_FALSE(store_->create_user("A@EXAMPLE.COM", sha256("x"), t0));
}

TEST_F(KeyStoreTest, MapFullIsAnErrorNotACrash) {
  open(std::size_t{64} * 4096);
  const auto u = make_user("first@example.com");
  result<user_record> last = user_record{};
  int created = 0;
  for (int i = 0; i < 100'000 && last; ++i) {
    last = store_->create_user("user" + std::to_string(i) + "@example.com" + std::string(150, 'x'),
                               sha256(new_gateway_key()), t0);
    created += last ? 1 : 0;
  }
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, errc::insufficient_storage);  // 507, not a 500
  EXPECT_GT(created, 0);
  // The store stays usable: reads work, and the failed write left nothing half-done.
  auto found = store_->find_user(u.id);
  ASSERT_TRUE(found);
  EXPECT_TRUE(*found);
  open();  // a larger map makes room again
  EXPECT_TRUE(store_->create_user("after@example.com", sha256(new_gateway_key()), t0));
}

}  // namespace
}  // namespace ib::storage
