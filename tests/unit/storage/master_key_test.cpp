#include "storage/master_key.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fernet.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::storage {
namespace {

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
  ::chmod((tmp_.path() + "/master.key").c_str(), 0600);
  auto keys = load_master_keys({}, tmp_.path());
  ASSERT_FALSE(keys);
  EXPECT_EQ(keys.error().message.find(secret.substr(0, 8)), std::string::npos);
  EXPECT_NE(keys.error().message.find("master.key"), std::string::npos);
  std::ofstream{tmp_.path() + "/master.key", std::ios::trunc};
  EXPECT_FALSE(load_master_keys({}, tmp_.path()));
}

TEST_F(MasterKeyTest, KeyFileOthersCanReadOrASymlinkIsRefused) {
  const std::string dir = tmp_.path();
  ASSERT_TRUE(load_master_keys({}, dir));
  const std::string path = dir + "/master.key";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto open_to_others = load_master_keys({}, dir);
  ASSERT_FALSE(open_to_others);
  EXPECT_NE(open_to_others.error().message.find("0600"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_EQ(::rename(path.c_str(), (dir + "/elsewhere.key").c_str()), 0);
  ASSERT_EQ(::symlink((dir + "/elsewhere.key").c_str(), path.c_str()), 0);
  EXPECT_FALSE(load_master_keys({}, dir));
}

TEST_F(MasterKeyTest, ConcurrentFirstStartsAgreeOnOneCompleteKey) {
  // Several processes starting on an empty data dir at once: each reads either nothing or the
  // winner's whole key, never a half-written file, and all end up with the same key.
  for (int round = 0; round < 20; ++round) {
    test::temp_dir dir;
    std::vector<result<std::vector<fernet_key>>> got(6, error{errc::storage});
    std::vector<std::thread> starts;
    for (auto& g : got) {
      starts.emplace_back([&g, &dir] { g = load_master_keys({}, dir.path()); });
    }
    for (auto& t : starts) {
      t.join();
    }
    for (const auto& g : got) {
      ASSERT_TRUE(g) << g.error().message;
      ASSERT_EQ(g->size(), 1U);
      EXPECT_EQ(encode_fernet_key(g->front()), encode_fernet_key(got.front()->front()));
    }
  }
}

}  // namespace
}  // namespace ib::storage
