// The key actor, the metrics actor and the request-log writer under their supervisors: each is
// killed and must be replaced, with its state reloaded, while callers keep using the supervisor's
// handle; a command that dies with an actor comes back to its asker as a CAF error (`is_dropped`),
// never a hang. Real threads (the key actor and the writer are detached, so CAF's deterministic
// scheduler cannot run them); every wait is a bounded request (a timeout shows as
// `sec::request_timeout`), never a sleep.
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
#include "tests/unit/actors/actor_test_support.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::actors {
namespace {

using namespace std::chrono_literals;

constexpr auto limit = 5s;

/// What a command came back with: a value, or the error (a hang is `sec::request_timeout`).
template <class T>
struct answer {
  std::optional<T> value;
  caf::error error;

  explicit operator bool() const { return value.has_value(); }
  bool hung() const { return error == caf::sec::request_timeout; }
};

class SupervisionTest : public test::store_fixture {
 protected:
  SupervisionTest() {
    keys_ = spawn_key_actor(sys_, store_, keyring_, dir_);
    metrics_ = spawn_metrics_actor(sys_, std::make_shared<metrics::registry>(), store_,
                                   config::request_log_config{});
  }

  ~SupervisionTest() override {
    caf::anon_send_exit(keys_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(metrics_, caf::exit_reason::user_shutdown);
  }

  // -- commands, asked as app/api.cpp asks them (a request with a timeout) ------------------------

  /// Asks `to` for `(xs...)` and waits (bounded) for its answer.
  template <class T, class Handle, class... Ts>
  answer<T> ask(const Handle& to, Ts... xs) {
    answer<T> out;
    self()
        ->request(to, limit, std::move(xs)...)
        .receive([&](T& v) { out.value = std::move(v); },
                 [&](caf::error& e) { out.error = std::move(e); });
    return out;
  }

  template <class Handle>
  answer<created_user> create_user(const Handle& to, std::string email) {
    return ask<created_user>(to, mkuser_atom::value, std::move(email));
  }

  template <class Handle>
  answer<key_info> put_key(const Handle& to, std::string user_id) {
    return ask<key_info>(to, putkey_atom::value, std::move(user_id), std::string("openai"),
                         std::string("sk-test-0123456789"));
  }

  template <class Handle>
  answer<std::string> list(const Handle& to, std::string user_id) {
    return ask<std::string>(to, listreq_atom::value, std::move(user_id), std::uint64_t{100},
                            std::string{});
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
    EXPECT_TRUE(u) << caf::to_string(u.error);
    return u ? u.value->id : std::string{};
  }

  // -- supervision
  // ---------------------------------------------------------------------------------

  /// The supervisor's current child for `Atom` (`child_atom` or `writer_atom`), as `Child`.
  template <class Atom, class Child, class Sup>
  Child child(const Sup& sup) {
    Child out;
    self()
        ->request(sup, limit, Atom::value)
        .receive([&](Child& a) { out = std::move(a); },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  key_actor_handle key_child() { return child<child_atom, key_actor_handle>(keys_); }
  metrics_actor_handle metrics_child() { return child<child_atom, metrics_actor_handle>(metrics_); }
  log_writer_handle writer_child() { return child<writer_atom, log_writer_handle>(metrics_); }

  /// Kills the supervisor's child for `Atom`, waits for it to be down, then for the supervisor
  /// to name its successor (each check a round trip to the supervisor). Returns the old child.
  template <class Atom, class Child, class Sup>
  Child kill_and_await_successor(const Sup& sup) {
    auto old = child<Atom, Child>(sup);
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

  key_actor_handle restart_key_actor() {
    return kill_and_await_successor<child_atom, key_actor_handle>(keys_);
  }
  metrics_actor_handle restart_metrics_actor() {
    return kill_and_await_successor<child_atom, metrics_actor_handle>(metrics_);
  }
  log_writer_handle restart_writer() {
    return kill_and_await_successor<writer_atom, log_writer_handle>(metrics_);
  }

  /// Waits until the supervisor names a child for `Atom` other than `old` (bounded round trips).
  template <class Atom, class Sup, class Child>
  void await_successor(const Sup& sup, const Child& old) {
    auto end = std::chrono::steady_clock::now() + limit;
    Child next;
    do {
      next = child<Atom, Child>(sup);
    } while (next == old && std::chrono::steady_clock::now() < end);
    EXPECT_TRUE(next);
    EXPECT_NE(next, old) << "the supervisor did not restart its child";
  }

  key_supervisor_handle keys_;
  metrics_supervisor_handle metrics_;
};

// -- the key actor
// ---------------------------------------------------------------------------------

TEST_F(SupervisionTest, KilledKeyActorIsRestartedAndWritesWorkAfterwards) {
  auto before = make_user("before@example.com");
  ASSERT_FALSE(before.empty());
  restart_key_actor();

  auto u = create_user(keys_, "after@example.com");
  ASSERT_FALSE(u.hung()) << "create user hung after the restart";
  ASSERT_TRUE(u) << caf::to_string(u.error);
  auto k = put_key(keys_, u.value->id);
  ASSERT_FALSE(k.hung()) << "put key hung after the restart";
  ASSERT_TRUE(k) << caf::to_string(k.error);
  EXPECT_FALSE(k.value->replaced);
  // The new key actor published both: the new user authenticates and has the key, and the user
  // from before the restart is still there.
  auto entry = dir_->authenticate(u.value->api_key);
  ASSERT_TRUE(entry);
  ASSERT_NE(entry->key_for("openai"), nullptr);
  EXPECT_EQ(entry->key_for("openai")->secret, "sk-test-0123456789");
  EXPECT_TRUE(dir_->snapshot.load()->users.contains(before));
  auto k2 = put_key(keys_, before);
  EXPECT_TRUE(k2);
}

TEST_F(SupervisionTest, KeyActorErrorsComeBackAsIbErrors) {
  make_user("taken@example.com");
  auto dup = create_user(keys_, "taken@example.com");
  ASSERT_FALSE(dup);
  auto err = to_ib_error(dup.error);
  ASSERT_TRUE(err) << caf::to_string(dup.error);
  EXPECT_EQ(err->code, errc::conflict);
  EXPECT_EQ(command_error(dup.error, "restarted").code, errc::conflict);  // not a restart
  auto del = ask<bool>(keys_, delkey_atom::value, std::string("usr_nobody"), std::string("openai"));
  ASSERT_TRUE(del) << caf::to_string(del.error);
  EXPECT_FALSE(*del.value);  // no such key
}

TEST_F(SupervisionTest, RestartedKeyActorReloadsTheSnapshotFromTheStore) {
  // A write that reached the store but not the snapshot (as if the key actor died in between).
  auto rec = store_->create_user("unpublished@example.com",
                                 storage::sha256(storage::new_gateway_key()), std::time(nullptr));
  ASSERT_TRUE(rec);
  ASSERT_FALSE(dir_->snapshot.load()->users.contains(rec->id));
  restart_key_actor();
  // Any answer from the new key actor comes after its reload (it reloads before its first
  // message).
  auto k = put_key(keys_, rec->id);
  ASSERT_TRUE(k) << caf::to_string(k.error);
  auto snap = dir_->snapshot.load();
  ASSERT_TRUE(snap->users.contains(rec->id));
  EXPECT_NE(snap->users.at(rec->id)->key_for("openai"), nullptr);
}

TEST_F(SupervisionTest, CommandsThatDieWithTheKeyActorComeBackAsDropped) {
  make_user("first@example.com");
  auto old = restart_key_actor();
  // A command sent to the dead actor is bounced by CAF: an error the API answers with 503
  // service_restarting, not a hang.
  auto u = create_user(old, "dropped@example.com");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error, caf::sec::request_receiver_down) << caf::to_string(u.error);
  EXPECT_TRUE(is_dropped(u.error));
  auto answer = command_error(u.error, "restarted");
  EXPECT_EQ(answer.code, errc::unavailable);  // 503 with Retry-After in the API
  EXPECT_EQ(answer.detail_code, "service_restarting");
  // Commands queued in the key actor's mailbox when it is killed (the kill is sent urgent, so
  // it overtakes them; anon_send_exit's is not), and one racing the kill through the
  // supervisor: each is answered, by a value or by CAF's bounce, never a hang.
  auto racing = key_child();
  using handle = decltype(self()->request(keys_, limit, mkuser_atom::value, std::string{}));
  std::vector<handle> pending;
  for (int i = 0; i < 3; ++i) {
    pending.push_back(self()->request(racing, limit, mkuser_atom::value,
                                      "racing" + std::to_string(i) + "@example.com"));
  }
  auto dest = caf::actor_cast<caf::actor>(racing);
  dest->enqueue(nullptr, caf::make_message_id(caf::message_priority::high),
                caf::make_message(caf::exit_msg{dest.address(), caf::exit_reason::kill}), nullptr);
  pending.push_back(self()->request(keys_, limit, mkuser_atom::value, "racing3@example.com"));
  int created = 0;
  int dropped = 0;
  for (auto& p : pending) {
    p.receive([&](created_user&) { ++created; },
              [&](caf::error& e) {
                EXPECT_EQ(e, caf::sec::request_receiver_down) << caf::to_string(e);
                ++dropped;
              });
  }
  EXPECT_EQ(created + dropped, 4);
  await_successor<child_atom>(keys_, racing);
  // The command dropped with the dead actor was not applied: the email is still free; and the
  // restarted actor serves the next command.
  auto again = create_user(keys_, "dropped@example.com");
  ASSERT_TRUE(again) << caf::to_string(again.error);
}

// -- the metrics actor and the request-log writer -------------------------------------------------

TEST_F(SupervisionTest, KilledMetricsActorIsRestartedAndRecordsAreListedAfterwards) {
  auto user = make_user("metrics@example.com");
  record(user, "req_before");
  auto l1 = list(metrics_, user);
  ASSERT_TRUE(l1) << caf::to_string(l1.error);
  EXPECT_NE(l1.value->find("req_before"), std::string::npos) << *l1.value;

  auto old = restart_metrics_actor();
  // A listing sent to the dead metrics actor is bounced, not left hanging.
  auto dropped = list(old, user);
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error, caf::sec::request_receiver_down) << caf::to_string(dropped.error);

  record(user, "req_after");
  auto l2 = list(metrics_, user);
  ASSERT_FALSE(l2.hung()) << "the listing hung after the restart";
  ASSERT_TRUE(l2) << caf::to_string(l2.error);
  EXPECT_NE(l2.value->find("req_after"), std::string::npos) << *l2.value;
  EXPECT_NE(l2.value->find("req_before"), std::string::npos) << *l2.value;
}

TEST_F(SupervisionTest, KilledWriterIsRestartedAndHandedToTheMetricsActor) {
  auto user = make_user("writer@example.com");
  auto metrics_child_before = metrics_child();
  auto old = restart_writer();
  EXPECT_EQ(metrics_child(), metrics_child_before) << "only the writer should restart";

  record(user, "req_new_writer");
  auto l = list(metrics_, user);
  ASSERT_FALSE(l.hung()) << "the listing hung after the writer restarted";
  ASSERT_TRUE(l) << caf::to_string(l.error);
  EXPECT_NE(l.value->find("req_new_writer"), std::string::npos) << *l.value;

  // A listing that dies with a writer is answered, not left hanging.
  auto dropped = list(old, user);
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error, caf::sec::request_receiver_down) << caf::to_string(dropped.error);
  EXPECT_TRUE(is_dropped(dropped.error));
}

TEST_F(SupervisionTest, ShutdownStopsEveryChildAndFlushesTheLastBatch) {
  auto user = make_user("shutdown@example.com");
  // Restart everything once, so shutdown is shown to reach the successors.
  restart_key_actor();
  restart_metrics_actor();
  restart_writer();
  std::vector<caf::actor> all{
      caf::actor_cast<caf::actor>(keys_), caf::actor_cast<caf::actor>(metrics_),
      caf::actor_cast<caf::actor>(key_child()), caf::actor_cast<caf::actor>(metrics_child()),
      caf::actor_cast<caf::actor>(writer_child())};
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
