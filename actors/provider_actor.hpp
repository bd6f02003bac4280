#pragma once

#include <cstdint>
#include <memory>

#include <caf/fwd.hpp>

#include "config/config.hpp"
#include "core/outcome.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::http {
enum class exchange_failure : std::uint8_t;
}

namespace ib::actors {

/// The I/O context, wrapped: CAF's spawn inspects argument types, which an incomplete
/// `io_context*` would fail.
struct io_handle {
  boost::asio::io_context* ctx = nullptr;
};

struct provider_options {
  std::shared_ptr<const config::provider_config> provider;
  io_handle io;
  std::size_t max_upstream_body = 32 * 1024 * 1024;
  std::string ca_file;  ///< extra CA bundle for upstream TLS (the system store is always used)
};

/// The behaviour of a provider actor: owns the keep-alive pool to one provider and the protocol
/// adapter. Handles `(call_atom, shared_ptr<upstream_call>)`: encodes the request, starts the
/// exchange on the I/O threads and answers at once (see `upstream_call`): with nothing when the
/// exchange started, after which it reports `stream_piece`s and one `attempt_result` straight to
/// `reply_to`; with `errc::invalid_request` (message and param for the client) when the adapter
/// cannot express the request. When the actor dies, every in-flight exchange ends with
/// `provider_down`.
caf::behavior provider_actor(caf::event_based_actor* self, provider_options opts);

/// What an exchange's wire failure means for the attempt (design §4): `none` is `success`,
/// `tls_error` a `connect_error`, `idle_timeout` a `total_timeout`, `body_too_large` a
/// `bad_response`, `pool_closed` a `provider_down`; the others keep their names.
outcome outcome_of(http::exchange_failure f) noexcept;

/// What a refused call (the `caf::error` answering `call_atom`) means for the attempt:
/// `unsupported` for the provider's `errc::invalid_request`, else `provider_down` (the actor was
/// gone, or could not take the call).
outcome outcome_of_refusal(const caf::error& e) noexcept;

}  // namespace ib::actors
