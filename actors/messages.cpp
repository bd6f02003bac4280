#include "actors/messages.hpp"

#include "storage/secrets.hpp"

namespace ib::actors {

void call_control::attach(std::shared_ptr<http::exchange_control> ex) {
  bool cancel_now = false;
  {
    std::lock_guard lock{mutex_};
    if (cancelled_) {
      cancel_now = true;
    } else {
      exchange_ = ex;
    }
  }
  if (cancel_now && ex) {
    ex->cancel();
  }
}

void call_control::cancel() {
  std::shared_ptr<http::exchange_control> ex;
  {
    std::lock_guard lock{mutex_};
    cancelled_ = true;
    ex = std::move(exchange_);
  }
  if (ex) {
    ex->cancel();
  }
}

void call_control::resume() {
  std::shared_ptr<http::exchange_control> ex;
  {
    std::lock_guard lock{mutex_};
    ex = exchange_;
  }
  if (ex) {
    ex->resume();
  }
}

bool call_control::cancelled() const {
  std::lock_guard lock{mutex_};
  return cancelled_;
}

std::shared_ptr<const user_entry> key_directory::authenticate(std::string_view token) const {
  if (!storage::is_gateway_key_shape(token)) {
    return nullptr;
  }
  auto digest = storage::sha256(token);
  std::string hash(reinterpret_cast<const char*>(digest.data()), digest.size());
  return snapshot.load(std::memory_order_acquire)->find_by_hash(hash);
}

}  // namespace ib::actors
