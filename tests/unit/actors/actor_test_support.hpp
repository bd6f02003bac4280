#pragma once

// What the actor tests that use the real store share: an actor system on two worker threads (the
// key actor and the request-log writer are detached, so CAF's deterministic scheduler cannot run
// them), a scoped actor to ask from, and an LMDB store in a temporary directory with a master
// keyring and the key snapshot loaded from it.

#include <memory>
#include <optional>
#include <vector>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/key_actor.hpp"
#include "actors/messages.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::actors::test {

/// The actor system's settings for these tests: two scheduler threads.
inline caf::actor_system_config& actor_config() {
  static caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::size_t{2});
  return cfg;
}

/// The base of the fixtures: members are built in declaration order (the store before the
/// system's actors use it). A derived destructor stops its actors; this one then drops the
/// scoped actor and waits for every actor to finish.
class store_fixture : public testing::Test {
 protected:
  store_fixture() : sys_(actor_config()) {
    auto s = storage::key_store::open(tmp_.path() + "/data");
    EXPECT_TRUE(s) << s.error().message;
    store_ = std::shared_ptr<storage::key_store>(std::move(*s));
    keyring_ = std::make_shared<const storage::fernet_keyring>(
        std::vector<storage::fernet_key>{storage::generate_fernet_key()});
    dir_ = std::make_shared<key_directory>();
    auto snap = load_key_snapshot(*store_, *keyring_);
    EXPECT_TRUE(snap);
    dir_->snapshot.store(*snap);
  }

  ~store_fixture() override {
    self_.reset();  // a scoped actor counts as running (0.17.6 ignores its `hide` argument)
    sys_.await_all_actors_done();
  }

  caf::scoped_actor& self() { return *self_; }

  storage::test::temp_dir tmp_;
  caf::actor_system sys_;
  std::optional<caf::scoped_actor> self_{std::in_place, sys_};
  std::shared_ptr<storage::key_store> store_;
  std::shared_ptr<const storage::fernet_keyring> keyring_;
  std::shared_ptr<key_directory> dir_;
};

}  // namespace ib::actors::test
