#include "storage/key_store.hpp"

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include "tests/unit/storage/test_support.hpp"

namespace ib::storage {
namespace {

constexpr std::int64_t t0 = 1'700'000'000;
constexpr std::int64_t us = 1'000'000;

class KeyStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path() + "/data";
    open();
  }

  void open(std::size_t map_size = std::size_t{1} << 32) {
    store_.reset();
    auto s = key_store::open(dir_, map_size);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  user_record make_user(const std::string& email) {
    auto u = store_->create_user(email, sha256(new_gateway_key()), t0);
    EXPECT_TRUE(u) << u.error().message;
    return u ? *u : user_record{};
  }

  static provider_key_record key_rec(std::string provider, std::string token) {
    return {std::move(provider), std::move(token), "sk-\u2026wxyz", t0};
  }

  static request_record req(std::string user, std::string id, std::int64_t created_s) {
    request_record r;
    r.id = std::move(id);
    r.user_id = std::move(user);
    r.created_us = created_s * us;
    r.tier = "ib/cheap";
    r.model = "ib/cheap";
    r.provider = "groq";
    r.upstream_model = "llama";
    r.attempts = {{"groq", 200, "", 12}};
    r.status = 200;
    r.latency_ms = 12;
    return r;
  }

  std::vector<std::string> ids(const key_store::page& p) {
    std::vector<std::string> out;
    for (const auto& j : p.records_json) {
      rapidjson::Document d;
      d.Parse(j.data(), j.size());
      EXPECT_FALSE(d.HasParseError()) << j;
      if (!d.HasParseError() && d.IsObject() && d.HasMember("id") && d["id"].IsString()) {
        out.emplace_back(d["id"].GetString());
      }
    }
    return out;
  }

  std::vector<std::string> all_ids(const std::string& user) {
    auto p = store_->list_requests(user, 1000, "");
    EXPECT_TRUE(p);
    return p ? ids(*p) : std::vector<std::string>{};
  }

  test::temp_dir tmp_;
  std::string dir_;
  std::unique_ptr<key_store> store_;
};

using strings = std::vector<std::string>;

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
  EXPECT_EQ(last.error().code, errc::storage);
  EXPECT_GT(created, 0);
  // The store stays usable: reads work, and the failed write left nothing half-done.
  auto found = store_->find_user(u.id);
  ASSERT_TRUE(found);
  EXPECT_TRUE(*found);
  open();  // a larger map makes room again
  EXPECT_TRUE(store_->create_user("after@example.com", sha256(new_gateway_key()), t0));
}

// -- request log --------------------------------------------------------------------------------

TEST_F(KeyStoreTest, ListRequestsPagesNewestFirst) {
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

TEST_F(KeyStoreTest, ListRequestsReturnsTheRecordJson) {
  auto r = req("usr_a", "req_1", t0);
  r.tokens = usage{3, 4, 7, 0};
  ASSERT_TRUE(store_->append_requests({r}, 0, 0, t0));
  auto p = store_->list_requests("usr_a", 10, "");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->records_json.size(), 1U);
  EXPECT_EQ(p->records_json[0], to_json(r));
}

TEST_F(KeyStoreTest, ListRequestsBeforeAnUnknownIdIsAnError) {
  ASSERT_TRUE(
      store_->append_requests({req("usr_a", "req_1", t0), req("usr_b", "req_2", t0)}, 0, 0, t0));
  auto p = store_->list_requests("usr_a", 10, "req_missing");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, errc::invalid_request);
  // Another user's request id is unknown too.
  EXPECT_FALSE(store_->list_requests("usr_a", 10, "req_2"));
}

TEST_F(KeyStoreTest, RequestsAreIsolatedEvenWhenUserIdsSharePrefixes) {
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

TEST_F(KeyStoreTest, RetentionKeepsTheNewestRecordsPerUser) {
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

TEST_F(KeyStoreTest, RetentionByAgeCoversEveryUser) {
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

TEST_F(KeyStoreTest, RetentionCountsStayExactAcrossManyBatchesAndAgeTrims) {
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

TEST_F(KeyStoreTest, InvalidRequestRecordsRejectTheBatch) {
  auto r = store_->append_requests({req("usr_a", "req_1", t0), req("", "req_2", t0)}, 0, 0, t0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_request);
  EXPECT_TRUE(all_ids("usr_a").empty());
  EXPECT_FALSE(store_->append_requests({req("usr_a", std::string(300, 'x'), t0)}, 0, 0, t0));
}

// -- master keys ------------------------------------------------------------------------------

class MasterKeyTest : public testing::Test {
 protected:
  test::temp_dir tmp_;
};

std::string read_all(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(MasterKeyTest, FileIsCreatedWithMode0600AndReused) {
  const std::string dir = tmp_.path() + "/data";
  auto first = load_master_keys({}, dir);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1U);
  const std::string path = dir + "/master.key";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);

  const std::string text = read_all(path);
  ASSERT_EQ(text.size(), 45U);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.substr(0, 44), encode_fernet_key(first->front()));

  auto second = load_master_keys({}, dir);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 1U);
  EXPECT_EQ(encode_fernet_key(second->front()), encode_fernet_key(first->front()));
}

TEST_F(MasterKeyTest, PythonUsesTheKeyFileAsWritten) {
  const std::string dir = tmp_.path();
  auto keys = load_master_keys({}, dir);
  ASSERT_TRUE(keys);
  const auto token = fernet_encrypt(keys->front(), "sk-interop");
  auto res = test::run_python(R"(import os, sys
from cryptography.fernet import Fernet
with open(os.environ["IB_TEST_PATH"], "rb") as f:
    key = f.read()
assert key.endswith(b"\n") and len(key) == 45
sys.stdout.buffer.write(Fernet(key.strip()).decrypt(os.environb[b"IB_TEST_TOKEN"])))",
                              {{"IB_TEST_PATH", dir + "/master.key"}, {"IB_TEST_TOKEN", token}});
  ASSERT_EQ(res.exit_code, 0) << "python3 with cryptography is required for this test";
  EXPECT_EQ(res.out, "sk-interop");
}

TEST_F(MasterKeyTest, EnvKeysWinAndKeepTheirOrder) {
  const std::string a = encode_fernet_key(generate_fernet_key());
  const std::string b = encode_fernet_key(generate_fernet_key());
  auto keys = load_master_keys({a, " " + b + " "}, tmp_.path());
  ASSERT_TRUE(keys) << keys.error().message;
  ASSERT_EQ(keys->size(), 2U);
  EXPECT_EQ(encode_fernet_key((*keys)[0]), a);
  EXPECT_EQ(encode_fernet_key((*keys)[1]), b);
  struct stat st {};
  EXPECT_NE(::stat((tmp_.path() + "/master.key").c_str(), &st), 0);
}

TEST_F(MasterKeyTest, BadEnvKeyIsRejectedWithoutItsValue) {
  const std::string good = encode_fernet_key(generate_fernet_key());
  const std::string bad = "Zq9xW2mBadMasterKey_tooShort-4V";
  auto keys = load_master_keys({good, bad}, tmp_.path());
  ASSERT_FALSE(keys);
  const auto& msg = keys.error().message;
  EXPECT_NE(msg.find("IB_MASTER_KEY"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key 2 of 2"), std::string::npos) << msg;
  for (std::size_t i = 0; i + 6 <= bad.size(); ++i) {
    EXPECT_EQ(msg.find(bad.substr(i, 6)), std::string::npos) << msg;
  }
  for (std::size_t i = 0; i + 6 <= good.size(); ++i) {
    EXPECT_EQ(msg.find(good.substr(i, 6)), std::string::npos) << msg;
  }
  EXPECT_FALSE(load_master_keys({""}, tmp_.path()));
}

TEST_F(MasterKeyTest, CorruptKeyFileIsRejectedWithoutItsContent) {
  const std::string secret = "NotAFernetKeyButStillSecret0123";
  std::ofstream{tmp_.path() + "/master.key"} << secret << "\n";
  auto keys = load_master_keys({}, tmp_.path());
  ASSERT_FALSE(keys);
  EXPECT_EQ(keys.error().message.find(secret.substr(0, 8)), std::string::npos);
  EXPECT_NE(keys.error().message.find("master.key"), std::string::npos);
  std::ofstream{tmp_.path() + "/master.key", std::ios::trunc};
  EXPECT_FALSE(load_master_keys({}, tmp_.path()));
}

}  // namespace
}  // namespace ib::storage
