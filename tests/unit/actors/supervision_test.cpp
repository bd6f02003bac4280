// The key actor, the metrics actor and the request-log writer under their supervisors: each is
// killed and must be replaced, with its state reloaded, while callers keep using the supervisor's
// handle. Real threads (the key actor and the writer are detached, so CAF's deterministic
// scheduler cannot run them); every wait is a bounded message round trip or future, never a sleep.
#include <chrono>
#include <ctime>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "actors/key_actor.hpp"
#include "actors/messages.hpp"
#include "actors/metrics_actor.hpp"
#include "metrics/registry.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/secrets.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::actors {
namespace {

using namespace std::chrono_literals;

constexpr auto limit = 5s;

/// Waits (bounded) for a command's answer; nullopt if `done` never ran (a hang).
template <class T>
std::optional<result<T>> await(std::future<result<T>>& f) {
  if (f.wait_for(limit) != std::future_status::ready) {
    return std::nullopt;
  }
  return f.get();
}

class SupervisionTest : public testing::Test {
 protected:
  SupervisionTest() : sys_(config()) {
    auto s = storage::key_store::open(tmp_.path() + "/data");
    EXPECT_TRUE(s) << s.error().message;
    store_ = std::shared_ptr<storage::key_store>(std::move(*s));
    keyring_ = std::make_shared<const storage::fernet_keyring>(
        std::vector<storage::fernet_key>{storage::generate_fernet_key()});
    dir_ = std::make_shared<key_directory>();
    auto snap = load_key_snapshot(*store_, *keyring_);
    EXPECT_TRUE(snap);
    dir_->snapshot.store(*snap);
    keys_ = spawn_key_actor(sys_, store_, keyring_, dir_);
    metrics_ = spawn_metrics_actor(sys_, std::make_shared<metrics::registry>(), store_,
                                   config::request_log_config{});
  }

  ~SupervisionTest() override {
    self_.reset();  // a scoped actor counts as running (0.17.6 ignores its `hide` argument)
    caf::anon_send_exit(keys_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(metrics_, caf::exit_reason::user_shutdown);
    sys_.await_all_actors_done();
  }

  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", std::size_t{2});
    return cfg;
  }

  // -- commands, as app/api.cpp sends them (with `answer_if_dropped`) -----------------------------

  std::optional<result<created_user>> create_user(const caf::actor& to, std::string email) {
    auto p = std::make_shared<std::promise<result<created_user>>>();
    auto f = p->get_future();
    auto cmd = std::make_shared<create_user_cmd>();
    cmd->email = std::move(email);
    cmd->done = answer_if_dropped<created_user>(
        [p](result<created_user> r) { p->set_value(std::move(r)); }, "restarted");
    caf::anon_send(to, mkuser_atom::value, std::move(cmd));
    return await(f);
  }

  std::optional<result<key_info>> put_key(const caf::actor& to, std::string user_id) {
    auto p = std::make_shared<std::promise<result<key_info>>>();
    auto f = p->get_future();
    auto cmd = std::make_shared<put_key_cmd>();
    cmd->user_id = std::move(user_id);
    cmd->provider = "openai";
    cmd->api_key = "sk-test-0123456789";
    cmd->done = answer_if_dropped<key_info>([p](result<key_info> r) { p->set_value(std::move(r)); },
                                            "restarted");
    caf::anon_send(to, putkey_atom::value, std::move(cmd));
    return await(f);
  }

  std::optional<result<std::string>> list(const caf::actor& to, std::string user_id) {
    auto p = std::make_shared<std::promise<result<std::string>>>();
    auto f = p->get_future();
    auto cmd = std::make_shared<list_requests_cmd>();
    cmd->user_id = std::move(user_id);
    cmd->limit = 100;
    cmd->done = answer_if_dropped<std::string>(
        [p](result<std::string> r) { p->set_value(std::move(r)); }, "restarted");
    caf::anon_send(to, listreq_atom::value, std::move(cmd));
    return await(f);
  }

  void record(std::string user_id, std::string id) {
    auto r = std::make_shared<request_record>();
    r->id = std::move(id);
    r->user_id = std::move(user_id);
    r->created_us = static_cast<std::int64_t>(std::time(nullptr)) * 1'000'000;
    r->model = "ib/cheap";
    r->status = 200;
    caf::anon_send(metrics_, record_atom::value, std::move(r));
  }

  /// A user made through the key actor (so it is in the snapshot too).
  std::string make_user(std::string email) {
    auto u = create_user(keys_, std::move(email));
    EXPECT_TRUE(u && *u);
    return u && *u ? (*u)->id : std::string{};
  }

  // -- supervision
  // ---------------------------------------------------------------------------------

  /// The supervisor's current child for `Atom` (`child_atom` or `writer_atom`).
  template <class Atom>
  caf::actor child(const caf::actor& sup) {
    caf::actor out;
    self()
        ->request(sup, limit, Atom::value)
        .receive([&](caf::actor& a) { out = std::move(a); },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  /// Kills the supervisor's child for `Atom`, waits for it to be down, then for the supervisor
  /// to name its successor (each check a round trip to the supervisor). Returns the old child.
  template <class Atom>
  caf::actor kill_and_await_successor(const caf::actor& sup) {
    auto old = child<Atom>(sup);
    EXPECT_TRUE(old);
    self()->monitor(old);
    caf::anon_send_exit(old, caf::exit_reason::kill);
    bool down = false;
    self()->receive([&](caf::down_msg& dm) { down = dm.source == old.address(); },
                    caf::after(limit) >> [] {});
    EXPECT_TRUE(down) << "the child did not die";
    await_successor<Atom>(sup, old);
    return old;
  }

  /// Waits until the supervisor names a child for `Atom` other than `old` (bounded round trips).
  template <class Atom>
  void await_successor(const caf::actor& sup, const caf::actor& old) {
    auto end = std::chrono::steady_clock::now() + limit;
    caf::actor next;
    do {
      next = child<Atom>(sup);
    } while (next == old && std::chrono::steady_clock::now() < end);
    EXPECT_TRUE(next);
    EXPECT_NE(next, old) << "the supervisor did not restart its child";
  }

  caf::scoped_actor& self() { return *self_; }

  storage::test::temp_dir tmp_;
  caf::actor_system sys_;
  std::optional<caf::scoped_actor> self_{std::in_place, sys_};
  std::shared_ptr<storage::key_store> store_;
  std::shared_ptr<const storage::fernet_keyring> keyring_;
  std::shared_ptr<key_directory> dir_;
  caf::actor keys_;
  caf::actor metrics_;
};

// -- the key actor
// ---------------------------------------------------------------------------------

TEST_F(SupervisionTest, KilledKeyActorIsRestartedAndWritesWorkAfterwards) {
  auto before = make_user("before@example.com");
  ASSERT_FALSE(before.empty());
  kill_and_await_successor<child_atom>(keys_);

  auto u = create_user(keys_, "after@example.com");
  ASSERT_TRUE(u) << "create user hung after the restart";
  ASSERT_TRUE(*u) << (*u).error().message;
  auto k = put_key(keys_, (*u)->id);
  ASSERT_TRUE(k) << "put key hung after the restart";
  ASSERT_TRUE(*k) << (*k).error().message;
  EXPECT_FALSE((*k)->replaced);
  // The new key actor published both: the new user authenticates and has the key, and the user
  // from before the restart is still there.
  auto entry = dir_->authenticate((*u)->api_key);
  ASSERT_TRUE(entry);
  ASSERT_NE(entry->key_for("openai"), nullptr);
  EXPECT_EQ(entry->key_for("openai")->secret, "sk-test-0123456789");
  EXPECT_TRUE(dir_->snapshot.load()->users.contains(before));
  auto k2 = put_key(keys_, before);
  EXPECT_TRUE(k2 && *k2);
}

TEST_F(SupervisionTest, RestartedKeyActorReloadsTheSnapshotFromTheStore) {
  // A write that reached the store but not the snapshot (as if the key actor died in between).
  auto rec = store_->create_user("unpublished@example.com",
                                 storage::sha256(storage::new_gateway_key()), std::time(nullptr));
  ASSERT_TRUE(rec);
  ASSERT_FALSE(dir_->snapshot.load()->users.contains(rec->id));
  kill_and_await_successor<child_atom>(keys_);
  // Any answer from the new key actor comes after its reload (it reloads before its first
  // message).
  auto k = put_key(keys_, rec->id);
  ASSERT_TRUE(k && *k);
  auto snap = dir_->snapshot.load();
  ASSERT_TRUE(snap->users.contains(rec->id));
  EXPECT_NE(snap->users.at(rec->id)->key_for("openai"), nullptr);
}

TEST_F(SupervisionTest, CommandsThatDieWithTheKeyActorAreAnsweredUnavailable) {
  make_user("first@example.com");
  auto old = kill_and_await_successor<child_atom>(keys_);
  // A command queued behind the kill, or sent to the dead actor, is dropped: it must still be
  // answered (503 in the API), not hang.
  auto u = create_user(old, "dropped@example.com");
  ASSERT_TRUE(u) << "a dropped command was never answered";
  ASSERT_FALSE(*u);
  EXPECT_EQ((*u).error().code, errc::unavailable);
  // A command racing the kill through the supervisor: answered either way, never a hang.
  auto racing = child<child_atom>(keys_);
  caf::anon_send_exit(racing, caf::exit_reason::kill);
  auto r = create_user(keys_, "racing@example.com");
  ASSERT_TRUE(r) << "a command racing the kill hung";
  if (!*r) {
    EXPECT_EQ((*r).error().code, errc::unavailable);
  }
  await_successor<child_atom>(keys_, racing);
  // And the command dropped with the dead actor was not applied: the email is still free.
  auto again = create_user(keys_, "dropped@example.com");
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again) << (*again).error().message;
}

// -- the metrics actor and the request-log writer -------------------------------------------------

TEST_F(SupervisionTest, KilledMetricsActorIsRestartedAndRecordsAreListedAfterwards) {
  auto user = make_user("metrics@example.com");
  record(user, "req_before");
  auto l1 = list(metrics_, user);
  ASSERT_TRUE(l1 && *l1);
  EXPECT_NE((*l1)->find("req_before"), std::string::npos) << **l1;

  kill_and_await_successor<child_atom>(metrics_);
  record(user, "req_after");
  auto l2 = list(metrics_, user);
  ASSERT_TRUE(l2) << "the listing hung after the restart";
  ASSERT_TRUE(*l2) << (*l2).error().message;
  EXPECT_NE((*l2)->find("req_after"), std::string::npos) << **l2;
  EXPECT_NE((*l2)->find("req_before"), std::string::npos) << **l2;
}

TEST_F(SupervisionTest, KilledWriterIsRestartedAndHandedToTheMetricsActor) {
  auto user = make_user("writer@example.com");
  auto metrics_child = child<child_atom>(metrics_);
  auto old = kill_and_await_successor<writer_atom>(metrics_);
  EXPECT_EQ(child<child_atom>(metrics_), metrics_child) << "only the writer should restart";

  record(user, "req_new_writer");
  auto l = list(metrics_, user);
  ASSERT_TRUE(l) << "the listing hung after the writer restarted";
  ASSERT_TRUE(*l) << (*l).error().message;
  EXPECT_NE((*l)->find("req_new_writer"), std::string::npos) << **l;

  // A listing that dies with a writer is answered, not left hanging.
  auto dropped = list(old, user);
  ASSERT_TRUE(dropped) << "a dropped listing was never answered";
  ASSERT_FALSE(*dropped);
  EXPECT_EQ((*dropped).error().code, errc::unavailable);
}

TEST_F(SupervisionTest, ShutdownStopsEveryChildAndFlushesTheLastBatch) {
  auto user = make_user("shutdown@example.com");
  // Restart everything once, so shutdown is shown to reach the successors.
  kill_and_await_successor<child_atom>(keys_);
  kill_and_await_successor<child_atom>(metrics_);
  kill_and_await_successor<writer_atom>(metrics_);
  std::vector<caf::actor> all{keys_, metrics_, child<child_atom>(keys_),
                              child<child_atom>(metrics_), child<writer_atom>(metrics_)};
  for (const auto& a : all) {
    self()->monitor(a);
  }
  record(user, "req_last");  // still in the metrics actor's batch
  caf::anon_send_exit(keys_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(metrics_, caf::exit_reason::user_shutdown);
  std::size_t down = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    self()->receive([&](caf::down_msg&) { ++down; }, caf::after(limit) >> [] {});
  }
  EXPECT_EQ(down, all.size()) << "an actor outlived the shutdown";
  auto page = store_->list_requests(user, 10, "");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->records_json.size(), 1u);
  EXPECT_NE(page->records_json[0].find("req_last"), std::string::npos);
}

}  // namespace
}  // namespace ib::actors
