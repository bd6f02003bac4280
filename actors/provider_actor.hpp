#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "config/config.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::actors {

/// The I/O context, wrapped: CAF's spawn inspects argument types, which an incomplete
/// `io_context*` would fail.
struct io_handle {
  boost::asio::io_context* ctx = nullptr;
};

/// The behaviour of a provider actor: owns the keep-alive pool to one provider and the protocol
/// adapter. Handles `(call_atom, shared_ptr<upstream_call>)`: encodes the request, starts the
/// exchange on the I/O threads and returns at once; the exchange reports `stream_piece`s and one
/// `attempt_result` straight to the caller. When the actor dies, every in-flight exchange ends
/// with `provider_down`.
struct provider_options {
  std::shared_ptr<const config::provider_config> provider;
  io_handle io;
  std::size_t max_upstream_body = 32 * 1024 * 1024;
  std::string ca_file;  ///< extra CA bundle for upstream TLS (the system store is always used)
};

caf::behavior provider_actor(caf::event_based_actor* self, provider_options opts);

}  // namespace ib::actors
