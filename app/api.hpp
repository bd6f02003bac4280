#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/cluster.hpp"
#include "actors/messages.hpp"
#include "actors/request_actor.hpp"
#include "core/rate_limit.hpp"
#include "http/server.hpp"

namespace ib::actors {
struct key_directory;
}

namespace ib::app {

/// Everything the endpoint functions need; built once by the gateway.
struct api_context {
  caf::actor_system* sys = nullptr;
  std::shared_ptr<const config::config> cfg;
  std::shared_ptr<actors::key_directory> keys;
  /// The key actor's supervisor: delegates writes to the current key actor (restarted if it
  /// dies), whose answer comes straight back to the asker.
  actors::key_supervisor_handle key_actor;
  /// The metrics actor's supervisor: delegates records and listings to the current metrics actor.
  actors::metrics_supervisor_handle metrics_actor;
  std::shared_ptr<const actors::gateway_deps> deps;
  /// The store's kind and reachability (`/readyz`); never null once the gateway runs.
  std::shared_ptr<const actors::store_status> store;
  /// Sign-ups per client address per hour (`rate_limits.signups_per_hour`, while sign-up is open).
  std::shared_ptr<keyed_limiter> signups = std::make_shared<keyed_limiter>();
  std::string models_body;    ///< GET /v1/models, rendered once
  std::string provider_list;  ///< "openai, anthropic, ..." for error messages
};

/// Renders the body of GET /v1/models: the tiers, then each provider's models as provider/model.
std::string render_models(const config::config& cfg, std::int64_t created);

/// A valid-looking email address (length, one `@`, a dot in the domain, no spaces or controls).
bool is_plausible_email(std::string_view email) noexcept;

/// The HTTP handler: routes one request to its endpoint and answers `res` exactly once (now, or
/// later from a CAF thread). Runs on an I/O thread and never blocks: writes are asked of the key
/// actor and listings of the metrics actor, each through a short-lived event-based actor (a
/// command its actor never answered, because it died or restarted, is a 503
/// `service_restarting` with `Retry-After: 1`); chat requests go to a new request actor; reads
/// come from snapshots.
void handle(const std::shared_ptr<const api_context>& api, http::request&& req,
            http::responder&& res);

}  // namespace ib::app
