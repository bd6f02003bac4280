// The key actor learning about writes made elsewhere (issue 14: another node wrote to the shared
// store): `(refresh_atom, user_id)` reloads one user into the published snapshot (its gateway key
// hashes and provider keys, decrypted with the keyring; a user the store no longer has is
// removed), `(reload_atom)` rebuilds the whole snapshot. The test writes to the LMDB store
// directly, as another node would have, then tells the key supervisor. Real threads (the key actor
// is detached); every wait is on a condition with a bounded timeout, never a sleep used as
// synchronisation.
#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/key_actor.hpp"
#include "actors/messages.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/secrets.hpp"
#include "tests/unit/actors/actor_test_support.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::actors {
namespace {

using namespace std::chrono_literals;

constexpr auto limit = 5s;

/// A user written straight to the store, with the gateway key it authenticates with.
struct elsewhere_user {
  std::string id;
  std::string api_key;
};

class KeyRefreshTest : public test::store_fixture {
 protected:
  KeyRefreshTest() { keys_ = spawn_key_actor(sys_, store_, keyring_, dir_); }

  ~KeyRefreshTest() override { caf::anon_send_exit(keys_, caf::exit_reason::user_shutdown); }

  // -- writes made elsewhere: straight to the store, the snapshot untouched ----------------------

  elsewhere_user create_elsewhere(const std::string& email) {
    auto key = storage::new_gateway_key();
    auto rec = store_->create_user(email, storage::sha256(key), std::time(nullptr));
    EXPECT_TRUE(rec) << rec.error().message;
    return {rec ? rec->id : std::string{}, key};
  }

  void put_elsewhere(const std::string& user_id, const std::string& provider,
                     const std::string& secret, const storage::fernet_keyring* ring = nullptr) {
    storage::provider_key_record rec;
    rec.provider = provider;
    rec.token = (ring != nullptr ? *ring : *keyring_).encrypt(secret);
    rec.hint = storage::key_hint(secret);
    rec.created = std::time(nullptr);
    auto rc = store_->put_provider_key(user_id, rec);
    EXPECT_TRUE(rc) << rc.error().message;
  }

  void delete_elsewhere(const std::string& user_id, const std::string& provider) {
    auto rc = store_->delete_provider_key(user_id, provider);
    ASSERT_TRUE(rc) << rc.error().message;
    EXPECT_TRUE(*rc);
  }

  // -- what the cluster listener tells the key supervisor (tells: no answer) ---------------------

  void refresh(const std::string& user_id) { caf::anon_send(keys_, refresh_atom::value, user_id); }
  void reload() { caf::anon_send(keys_, reload_atom::value); }

  // -- commands through the key supervisor, as app/api.cpp asks them -----------------------------

  std::optional<created_user> create_here(const std::string& email) {
    std::optional<created_user> out;
    self()
        ->request(keys_, limit, mkuser_atom::value, email)
        .receive([&](created_user& u) { out = std::move(u); },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  std::optional<key_info> put_here(const std::string& user_id, const std::string& provider,
                                   const std::string& secret) {
    std::optional<key_info> out;
    self()
        ->request(keys_, limit, putkey_atom::value, user_id, provider, secret)
        .receive([&](key_info& k) { out = std::move(k); },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  // -- the published snapshot ---------------------------------------------------------------------

  std::shared_ptr<const key_snapshot> snap() const { return dir_->snapshot.load(); }

  std::shared_ptr<const user_entry> user(const std::string& id) const {
    auto s = snap();
    auto it = s->users.find(id);
    return it == s->users.end() ? nullptr : it->second;
  }

  /// The secret of `user_id`'s key for `provider` in the snapshot, or nullopt.
  std::optional<std::string> secret(const std::string& user_id, const std::string& provider) const {
    auto u = user(user_id);
    if (u == nullptr || u->key_for(provider) == nullptr) {
      return std::nullopt;
    }
    return u->key_for(provider)->secret;
  }

  /// Polls the snapshot until `pred` holds or the bound passes.
  static bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= end) {
        return false;
      }
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  key_supervisor_handle keys_;
};

TEST_F(KeyRefreshTest, RefreshPublishesAUserAndKeyWrittenElsewhere) {
  auto local = create_here("local@example.com");
  ASSERT_TRUE(local);
  auto other = create_elsewhere("other@example.com");
  ASSERT_FALSE(other.id.empty());
  put_elsewhere(other.id, "openai", "sk-elsewhere-0123456789");
  // Written elsewhere: not in this node's snapshot until it is told.
  ASSERT_EQ(dir_->authenticate(other.api_key), nullptr);
  ASSERT_EQ(user(other.id), nullptr);

  refresh(other.id);
  ASSERT_TRUE(wait_until([&] { return dir_->authenticate(other.api_key) != nullptr; }, limit))
      << "the refreshed user does not authenticate";
  auto entry = dir_->authenticate(other.api_key);
  EXPECT_EQ(entry->id, other.id);
  EXPECT_EQ(entry->email, "other@example.com");
  ASSERT_NE(entry->key_for("openai"), nullptr);
  EXPECT_EQ(entry->key_for("openai")->secret, "sk-elsewhere-0123456789");  // decrypted
  EXPECT_EQ(entry->key_for("openai")->hint, storage::key_hint("sk-elsewhere-0123456789"));
  // The user of this node is untouched.
  EXPECT_NE(dir_->authenticate(local->api_key), nullptr);
}

TEST_F(KeyRefreshTest, RefreshPicksUpAReplacedAndAnAddedKey) {
  auto u = create_here("replace@example.com");
  ASSERT_TRUE(u);
  ASSERT_TRUE(put_here(u->id, "openai", "sk-first-0123456789"));
  put_elsewhere(u->id, "openai", "sk-second-0123456789");
  put_elsewhere(u->id, "anthropic", "sk-ant-0123456789");
  ASSERT_EQ(secret(u->id, "openai"), "sk-first-0123456789");

  refresh(u->id);
  ASSERT_TRUE(wait_until([&] { return secret(u->id, "anthropic").has_value(); }, limit));
  EXPECT_EQ(secret(u->id, "openai"), "sk-second-0123456789");
  EXPECT_EQ(secret(u->id, "anthropic"), "sk-ant-0123456789");
  EXPECT_EQ(user(u->id)->keys.size(), 2u);
  EXPECT_NE(dir_->authenticate(u->api_key), nullptr);
}

TEST_F(KeyRefreshTest, RefreshDropsAKeyDeletedElsewhere) {
  auto u = create_here("delete@example.com");
  ASSERT_TRUE(u);
  ASSERT_TRUE(put_here(u->id, "openai", "sk-gone-0123456789"));
  ASSERT_TRUE(put_here(u->id, "groq", "gsk-kept-0123456789"));
  delete_elsewhere(u->id, "openai");
  ASSERT_TRUE(secret(u->id, "openai"));  // still published until told

  refresh(u->id);
  ASSERT_TRUE(wait_until([&] { return !secret(u->id, "openai").has_value(); }, limit))
      << "the key deleted elsewhere is still in the snapshot";
  EXPECT_EQ(secret(u->id, "groq"), "gsk-kept-0123456789");
  auto entry = dir_->authenticate(u->api_key);
  ASSERT_NE(entry, nullptr) << "the user itself must stay";
  EXPECT_EQ(entry->key_for("openai"), nullptr);
}

TEST_F(KeyRefreshTest, RefreshIsAppliedBeforeALaterCommand) {
  // Tells and commands reach the key actor in the order they were sent to the supervisor: a
  // command sent after the refresh finds the refreshed user (here: a key for a user created
  // elsewhere, which the key actor accepts only for a user in its snapshot).
  auto other = create_elsewhere("ordered@example.com");
  refresh(other.id);
  auto k = put_here(other.id, "openai", "sk-after-refresh-0123456789");
  ASSERT_TRUE(k);
  EXPECT_FALSE(k->replaced);
  EXPECT_EQ(secret(other.id, "openai"), "sk-after-refresh-0123456789");
  EXPECT_NE(dir_->authenticate(other.api_key), nullptr);
}

TEST_F(KeyRefreshTest, RefreshRemovesAUserTheStoreNoLongerHas) {
  auto kept = create_here("kept@example.com");
  ASSERT_TRUE(kept);
  // A user in the snapshot that the store does not have (deleted elsewhere): put there by hand,
  // with a gateway key.
  auto ghost_key = storage::new_gateway_key();
  auto digest = storage::sha256(ghost_key);
  const std::string ghost_id = storage::new_id("usr_");
  {
    auto next = std::make_shared<key_snapshot>(*snap());
    auto ghost = std::make_shared<user_entry>();
    ghost->id = ghost_id;
    ghost->keys.push_back(user_key{"openai", "sk-ghost-0123456789", "sk-…6789", 0});
    next->users[ghost_id] = std::move(ghost);
    next->user_by_hash[std::string(reinterpret_cast<const char*>(digest.data()), digest.size())] =
        ghost_id;
    dir_->snapshot.store(std::move(next));
  }
  ASSERT_NE(dir_->authenticate(ghost_key), nullptr);

  refresh(ghost_id);
  ASSERT_TRUE(wait_until([&] { return user(ghost_id) == nullptr; }, limit))
      << "a user the store does not have is still in the snapshot";
  EXPECT_EQ(dir_->authenticate(ghost_key), nullptr);
  EXPECT_EQ(snap()->user_by_hash.size(), 1u) << "the ghost's key hash must go too";
  EXPECT_NE(dir_->authenticate(kept->api_key), nullptr);
}

TEST_F(KeyRefreshTest, RefreshIgnoresAKeyTheMasterKeysDoNotDecrypt) {
  auto other = create_elsewhere("foreign@example.com");
  const storage::fernet_keyring foreign{
      std::vector<storage::fernet_key>{storage::generate_fernet_key()}};
  put_elsewhere(other.id, "openai", "sk-foreign-0123456789", &foreign);
  put_elsewhere(other.id, "groq", "gsk-ours-0123456789");

  refresh(other.id);
  ASSERT_TRUE(wait_until([&] { return dir_->authenticate(other.api_key) != nullptr; }, limit));
  EXPECT_FALSE(secret(other.id, "openai")) << "an undecryptable token must not be published";
  EXPECT_EQ(secret(other.id, "groq"), "gsk-ours-0123456789");
}

TEST_F(KeyRefreshTest, ReloadMakesEveryWriteMadeElsewhereVisible) {
  auto here = create_here("here@example.com");
  ASSERT_TRUE(here);
  ASSERT_TRUE(put_here(here->id, "openai", "sk-here-0123456789"));
  auto a = create_elsewhere("a@example.com");
  auto b = create_elsewhere("b@example.com");
  auto c = create_elsewhere("c@example.com");
  put_elsewhere(a.id, "openai", "sk-a-0123456789");
  put_elsewhere(b.id, "anthropic", "sk-b-0123456789");
  put_elsewhere(b.id, "groq", "gsk-b-0123456789");
  delete_elsewhere(here->id, "openai");
  put_elsewhere(here->id, "groq", "gsk-here-0123456789");
  ASSERT_EQ(dir_->authenticate(a.api_key), nullptr);

  reload();
  ASSERT_TRUE(wait_until(
      [&] {
        return dir_->authenticate(a.api_key) != nullptr && dir_->authenticate(b.api_key) != nullptr
               && dir_->authenticate(c.api_key) != nullptr && !secret(here->id, "openai");
      },
      limit))
      << "the reload did not publish every write";
  EXPECT_EQ(secret(a.id, "openai"), "sk-a-0123456789");
  EXPECT_EQ(secret(b.id, "anthropic"), "sk-b-0123456789");
  EXPECT_EQ(secret(b.id, "groq"), "gsk-b-0123456789");
  EXPECT_TRUE(user(c.id)->keys.empty());
  EXPECT_EQ(secret(here->id, "groq"), "gsk-here-0123456789");
  EXPECT_NE(dir_->authenticate(here->api_key), nullptr);
  EXPECT_EQ(snap()->users.size(), 4u);
  EXPECT_EQ(user(c.id)->email, "c@example.com");
}

}  // namespace
}  // namespace ib::actors
