#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"

namespace ib {

class json_writer;

/// Token usage reported by the provider that served a request.
struct usage {
  std::int64_t prompt_tokens = 0;      ///< input tokens, cached ones included (OpenAI semantics)
  std::int64_t completion_tokens = 0;  ///< output tokens
  std::int64_t total_tokens = 0;       ///< as the provider reported it, else the sum
  std::int64_t cached_tokens = 0;      ///< input tokens served from the provider's cache
};

/// One attempt (or skip) of a request against one provider.
struct attempt_record {
  std::string provider;         ///< the provider's configured name
  int status = 0;               ///< upstream HTTP status, 0 when there was none
  std::string reason;           ///< `connect_error`, `no_key`, ... when status is 0
  std::int64_t latency_ms = 0;  ///< time spent on this attempt, in milliseconds
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
  std::vector<attempt_record> attempts;  ///< in the order they were made
  int status = 0;                        ///< status sent to the client
  std::int64_t latency_ms = 0;           ///< whole request, in milliseconds
  std::optional<std::int64_t> ttfb_ms;   ///< to the first body byte of a 2xx sent, in ms (a
                                         ///< non-streamed answer: when it was sent)
  bool stream = false;                   ///< the client asked for a stream
  std::optional<ib::usage> tokens;       ///< usage the serving provider reported, if any
  /// Time the gateway itself added, in microseconds: the whole request minus the time spent
  /// waiting on upstreams (for a stream, up to its first byte). Not part of the API's JSON.
  std::int64_t overhead_us = 0;
};

/// The record as the API shows it: `{"id","created","tier","model","provider","upstream_model",
/// "attempts":[{"provider","status"|"reason","latency_ms"}],"status","latency_ms","ttfb_ms",
/// "stream","usage"}` (`created` in unix seconds; `usage` null when unknown).
/// Strings go through `json_writer` (core/json.hpp): always valid JSON.
std::string to_json(const request_record& r);

/// The request log's stored form of `r` (storage/request_log.cpp): what `to_json` shows except
/// `id` and `created`, which the store's key holds. Layout, version 1: the byte 0x01; `tier`,
/// `model`, `provider`, `upstream_model` as strings; the number of attempts, then each attempt's
/// `provider`, `status` and (when `status` is 0) `reason` strings/integers and `latency_ms`; the
/// record's `status` and `latency_ms`; a flags byte (1: `stream`, 2: `ttfb_ms` follows, 4: the
/// three usage counts follow); then those. A string is its length as an unsigned LEB128 varint,
/// then its bytes; an integer is a zigzag LEB128 varint. About 50 bytes for a one-attempt record,
/// against about 330 for its JSON: the request-log writer's pages, page copies and disk writes
/// are what it saves (bench/README.md, "Fourth round"). A JSON record never starts with 0x01
/// (it starts with `{`), so a store can hold both.
std::string to_stored(const request_record& r);

/// Reads `to_stored`'s bytes back into a record, leaving `id`, `user_id` and `created_us` empty
/// (the caller takes them from the key). Reads only within `bytes`. Errors (`errc::storage`):
/// another version byte, a value cut short, a varint longer than 10 bytes or out of range, a
/// string longer than what is left, more attempts than bytes, bytes left over.
result<request_record> from_stored(std::string_view bytes);

/// `us` microseconds as the `x-inferbridge-overhead-ms` header value: milliseconds with exactly
/// three decimals, e.g. 412 -> `0.412`, 12345 -> `12.345`; a negative value is shown as `0.000`.
std::string overhead_ms_text(std::int64_t us);

/// Writes `to_json(r)` as the next value of `w` (e.g. an element of a listing's array).
void write_json(json_writer& w, const request_record& r);

/// Writes the member `"attempts":[{"provider","status"|"reason","latency_ms"}]` into `w`, which
/// must be inside an object (an empty reason is null), as the record's JSON holds it.
void write_json_attempts(json_writer& w, const std::vector<attempt_record>& attempts);

/// The request-log listing (`GET /v1/requests`): `{"object":"list","data":[...],"has_more":b}`,
/// with each of `records_json` (as stored: `to_json` output, newest first) spliced in as it is.
std::string to_list_json(const std::vector<std::string>& records_json, bool has_more);

/// The OpenAI error envelope of `err` (`to_envelope` in core/error.hpp) with
/// `"inferbridge_attempts":[{"provider","status"|"reason","latency_ms"}]` as the last member of
/// its `error` object: the gateway's final error body when every attempt failed.
std::string to_envelope(const error& err, const std::vector<attempt_record>& attempts);

}  // namespace ib
