// libFuzzer target: Anthropic → OpenAI stream translation (providers/anthropic_stream.cpp), and
// with the mode bits the same invariants for every shipped provider's translator
// (providers/adapter.cpp `make_stream_translator`) and the non-streamed `decode`.
//
// Input: byte 0 = mode (bit 0: the client asked for include_usage; bits 1-2: 0 or 1 the
// Anthropic translator, 2 another shipped provider's translator chosen by byte 1, 3 the
// non-streamed Anthropic decode with byte 1 as the status), byte 1 = how the body is split,
// then the upstream body.
//
// Invariants: the client bytes are `data: <payload>\n\n` events whose payload is a JSON object
// or `[DONE]`; `done` ends them with `data: [DONE]\n\n`; after a failure nothing more is emitted;
// a failure's envelope is a JSON object; a truncated stream is never success.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/load.hpp"
#include "fuzz/fuzz_support.hpp"
#include "providers/adapter.hpp"
#include "providers/anthropic.hpp"
#include "providers/chat_request.hpp"

namespace {

using ib::fuzz::check;

const ib::config::config& shipped() {
  static const ib::config::config cfg = [] {
    auto c = ib::config::load_default({});
    check(c.has_value(), "the shipped configuration does not load");
    return *c;
  }();
  return cfg;
}

const ib::providers::chat_request& request(bool include_usage) {
  static const auto make = [](bool usage) {
    auto r = ib::providers::parse_chat_request(
        std::string(R"({"model":"ib/balanced","stream":true,"stream_options":{"include_usage":)")
        + (usage ? "true" : "false")
        + R"(},"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",)"
          R"("function":{"name":"get_weather","parameters":{"type":"object"}}}]})");
    check(r.has_value(), "the fixed request does not parse");
    return *r;
  };
  static const ib::providers::chat_request with = make(true);
  static const ib::providers::chat_request without = make(false);
  return include_usage ? with : without;
}

/// Checks that `bytes` is a run of `data: <JSON object or [DONE]>\n\n` events.
void check_events(std::string_view bytes) {
  while (!bytes.empty()) {
    check(bytes.starts_with("data: "), "a client event that does not start with data: ", bytes);
    auto end = bytes.find("\n\n");
    check(end != std::string_view::npos, "a client event without its blank line", bytes);
    std::string_view payload = bytes.substr(6, end - 6);
    check(payload.find('\n') == std::string_view::npos, "a client event with two lines", payload);
    if (payload != "[DONE]") {
      check(ib::fuzz::is_json_object(payload), "a client event that is not a JSON object", payload);
    }
    bytes.remove_prefix(end + 2);
  }
}

void check_failure(const ib::providers::stream_output& out) {
  if (!out.failure) {
    return;
  }
  check(ib::fuzz::is_json_object(out.failure->envelope), "a failure envelope is not JSON",
        out.failure->envelope);
  check(out.failure->result != ib::outcome::success, "a failure with a success outcome");
  check(!out.done, "done and failed");
  std::string event = ib::providers::stream_error_event(*out.failure);
  check_events(event);
}

void run_stream(ib::providers::stream_translator& t, std::string_view body,
                ib::fuzz::splitter& cut) {
  ib::providers::stream_output out;
  std::size_t emitted = 0;
  bool failed = false;
  while (!body.empty()) {
    auto n = cut.next(body.size());
    t.feed(body.substr(0, n), out);
    body.remove_prefix(n);
    if (failed) {
      check(out.client_bytes.size() == emitted, "bytes emitted after a failure");
    }
    failed = out.failure.has_value();
    emitted = out.client_bytes.size();
    check_failure(out);
  }
  bool done_before = out.done;
  t.finish(out);
  if (failed) {
    check(out.client_bytes.size() == emitted, "bytes emitted after a failure");
  }
  check(out.done || out.failure.has_value(), "a finished stream neither done nor failed");
  if (done_before) {
    check(out.done && !out.failure, "finish() undid done");
  }
  check_failure(out);
  check_events(out.client_bytes);
  if (out.done) {
    check(std::string_view(out.client_bytes).ends_with("data: [DONE]\n\n"),
          "done without a final [DONE]", out.client_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  const bool include_usage = (data[0] & 1) != 0;
  const int mode = (data[0] >> 1) & 3;
  ib::fuzz::splitter cut(data[1]);
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto& req = request(include_usage);
  constexpr std::string_view model = "claude-sonnet-4-6";

  if (mode == 3) {
    const int statuses[] = {200, 200, 201, 400, 401, 403, 404, 413, 429, 500, 503, 529};
    ib::providers::upstream_response res{statuses[data[1] % std::size(statuses)],
                                         "application/json", body};
    auto d = ib::providers::anthropic::decode(req, model, res, 1'700'000'000);
    if (!d.body_is_input) {
      check(ib::fuzz::is_json_object(d.body), "a decoded body that is not a JSON object", d.body);
    }
    check(d.status >= 100 && d.status <= 599, "a decoded status out of range");
    if (d.result == ib::outcome::success) {
      check(res.status / 100 == 2, "success from a non-2xx answer");
    }
    return 0;
  }
  std::unique_ptr<ib::providers::stream_translator> t;
  if (mode == 2) {
    const auto& providers = shipped().providers;
    t = ib::providers::make_stream_translator(providers[data[1] % providers.size()], req,
                                              "upstream-model");
  } else {
    t = ib::providers::anthropic::make_translator(req, model, 1'700'000'000);
  }
  run_stream(*t, body, cut);
  return 0;
}
