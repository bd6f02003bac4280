#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/result.hpp"

namespace ib::config {

/// Parses a JSON config (comments and trailing commas allowed), applies `env` overrides
/// (IB_LISTEN, IB_DATA_DIR, IB_MASTER_KEY, IB_ADMIN_TOKEN, IB_EXTRA_CA_FILE,
/// IB_<PROVIDER>_BASE_URL) and validates it. A field missing from `json_text` keeps the default
/// of config.hpp; `providers` and `tiers`, when present, replace the shipped defaults entirely,
/// and when absent come from `default_json()` (if only `providers` is given, the default tiers
/// keep just the entries whose provider it defines). A provider named like an entry of the
/// shipped `providers` inherits that entry's protocol, base_url, auth, anthropic_version, dialect
/// and reasoning_models; any other needs a `base_url` (or IB_<NAME>_BASE_URL). Unknown fields
/// are refused. All errors are errc::invalid_request and name the field path (or the environment
/// variable), e.g. `providers.openai.timeouts_ms.connect: expected a positive integer`; the path
/// is also in `error::param`. An empty environment variable counts as unset.
result<config> load(std::string_view json_text, const env_map& env);

/// Loads the shipped default (`default_json()`) with `env` applied; errors as `load`.
result<config> load_default(const env_map& env);

/// Captures the process environment (only `IB_*` variables): the one impure function here,
/// called once by main.
env_map process_env();

/// A human-readable summary for `--check-config`: listen address, data dir, providers with
/// their base URL and protocol, and each tier resolved to its ordered `provider/model` list.
std::string describe(const config& cfg);

}  // namespace ib::config
