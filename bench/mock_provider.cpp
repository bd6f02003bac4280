// mock_provider: a fast, faithful mock of the six upstream LLM providers InferBridge talks to
// (OpenAI, Anthropic, Groq, DeepSeek, Together, Sarvam), with every fault the gateway must
// survive selectable per request. See bench/README.md and docs providers.md §4.
//
//   mock_provider --listen 127.0.0.1:0 [--threads N] [--record-limit N]
//                 [--keepalive-timeout MS] [--idle-close-jitter MS] [--race-close P] [--seed N]

#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>
#include <string>
#include <string_view>

#include "bench/mock/server.hpp"

namespace {

constexpr std::string_view usage =
    "usage: mock_provider --listen HOST:PORT [--threads N (default 1)]\n"
    "                     [--record-limit N (default 1000; 0 = record nothing)]\n"
    "                     [--keepalive-timeout MS (Node-like: send Keep-Alive: timeout=,\n"
    "                        close connections idle this long; default 0 = off)]\n"
    "                     [--idle-close-jitter MS (also close each idle connection at a\n"
    "                        random moment below MS; default 0 = off)]\n"
    "                     [--race-close P (chance 0..1 to close an idle connection unread\n"
    "                        as its next request arrives; default 0)]\n"
    "                     [--seed N (for the random choices; default 1)]\n";

bool parse_count(std::string_view text, long long lo, long long hi, long long& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && end == text.data() + text.size() && out >= lo
         && out <= hi;
}

/// A probability: a decimal number from 0 to 1.
bool parse_chance(std::string_view text, double& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && end == text.data() + text.size() && out >= 0
         && out <= 1;
}

/// `HOST:PORT` or `[V6HOST]:PORT`.
bool parse_listen(std::string_view text, ib::mock::server_options& o) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return false;
  }
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  long long port = 0;
  if (host.empty() || !parse_count(text.substr(colon + 1), 0, 65535, port)) {
    return false;
  }
  o.host = std::string(host);
  o.port = std::to_string(port);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  ib::mock::server_options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "mock_provider: " << arg << " needs a value\n" << usage;
      return 2;
    }
    std::string_view value = argv[++i];
    long long n = 0;
    if (arg == "--listen" && parse_listen(value, options)) {
      continue;
    }
    if (arg == "--threads" && parse_count(value, 1, 256, n)) {
      options.threads = static_cast<int>(n);
      continue;
    }
    if (arg == "--record-limit" && parse_count(value, 0, 100'000'000, n)) {
      options.record_limit = static_cast<std::size_t>(n);
      continue;
    }
    if (arg == "--keepalive-timeout" && parse_count(value, 0, 3'600'000, n)) {
      options.keepalive_timeout = std::chrono::milliseconds{n};
      continue;
    }
    if (arg == "--idle-close-jitter" && parse_count(value, 0, 3'600'000, n)) {
      options.idle_close_jitter = std::chrono::milliseconds{n};
      continue;
    }
    if (arg == "--race-close" && parse_chance(value, options.race_close)) {
      continue;
    }
    if (arg == "--seed" && parse_count(value, 0, std::numeric_limits<long long>::max(), n)) {
      options.seed = static_cast<std::uint64_t>(n);
      continue;
    }
    std::cerr << "mock_provider: bad argument " << arg << " " << value << "\n" << usage;
    return 2;
  }
  return ib::mock::run_server(options);
}
