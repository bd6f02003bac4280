#pragma once

#include <cstdint>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"
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

/// What a provider actor needs: its provider's configuration, the I/O context its exchanges
/// run on (must outlive the actor system), and the limits of an upstream answer.
struct provider_options {
  std::shared_ptr<const config::provider_config> provider;
  io_handle io;
  std::size_t max_upstream_body = 32 * 1024 * 1024;  ///< bytes; larger is a bad_response
  std::string ca_file;  ///< extra CA bundle for upstream TLS (the system store is always used)
};

/// The behaviour of a provider actor (`provider_actor_handle`): owns the keep-alive pool to one
/// provider and the protocol adapter. Handles `(call_atom, upstream_call) -> attempt_result`:
/// encodes the request and starts the exchange on the I/O threads; the response is the
/// attempt's result, sent from the I/O thread when the exchange ends (one message; stream pieces
/// go to the asker as `(chunk_atom, stream_piece)` before it, from the same thread). A request
/// the adapter cannot express is answered at once with `errc::invalid_request` (message and
/// param for the client). When the actor dies, every in-flight exchange ends with
/// `provider_down` and responds so; a call still in its mailbox is bounced by CAF
/// (`sec::request_receiver_down`, see `outcome_of_refusal`).
provider_actor_handle::behavior_type provider_actor(provider_actor_handle::pointer self,
                                                    provider_options opts);

/// What an exchange's wire failure means for the attempt (design §4): `none` is `success`,
/// `tls_error` a `connect_error`, `idle_timeout` a `total_timeout`, `body_too_large` a
/// `bad_response`, `pool_closed` a `provider_down`; the others keep their names.
outcome outcome_of(http::exchange_failure f) noexcept;

/// The upstream client's options for provider `cfg`: its endpoint (TLS or not), connect,
/// first-byte and total timeouts (ms) and pool size; `max_body` bytes for a buffered answer;
/// `ca_file` trusted besides the system store (empty: none).
http::client_options client_options_for(const config::provider_config& cfg, std::size_t max_body,
                                        const std::string& ca_file);

/// What a refused call (the `caf::error` answering `call_atom`) means for the attempt:
/// `unsupported` for the provider's `errc::invalid_request`, else `provider_down` (the actor was
/// gone, or could not take the call).
outcome outcome_of_refusal(const caf::error& e) noexcept;

}  // namespace ib::actors
