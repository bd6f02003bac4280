#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ib {

/// Token usage reported by the provider that served a request.
struct usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cached_tokens = 0;
};

/// One attempt (or skip) of a request against one provider.
struct attempt_record {
  std::string provider;
  int status = 0;      ///< upstream HTTP status, 0 when there was none
  std::string reason;  ///< `connect_error`, `no_key`, ... when status is 0
  std::int64_t latency_ms = 0;
};

/// Metadata of one chat request (design §6). Never prompts, completions or keys.
struct request_record {
  std::string id;               ///< x-request-id, e.g. `req_...`
  std::string user_id;          ///< owner; part of the storage key, not of the JSON
  std::int64_t created_us = 0;  ///< unix time in microseconds
  std::string tier;             ///< tier name, or empty for a direct `provider/model` route
  std::string model;            ///< as requested
  std::string provider;         ///< who served, or empty
  std::string upstream_model;   ///< model that answered, or empty
  std::vector<attempt_record> attempts;
  int status = 0;  ///< status sent to the client
  std::int64_t latency_ms = 0;
  std::optional<std::int64_t> ttfb_ms;
  bool stream = false;
  std::optional<ib::usage> tokens;
};

/// The record as the API shows it: `{"id","created","tier","model","provider","upstream_model",
/// "attempts":[{"provider","status"|"reason","latency_ms"}],"status","latency_ms","ttfb_ms",
/// "stream","usage"}` (`created` in unix seconds; `usage` null when unknown).
std::string to_json(const request_record& r);

}  // namespace ib
