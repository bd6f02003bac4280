// libFuzzer target: config parsing (config/load.cpp `load`, JSON with comments, and the
// environment overrides). Input: the config text, then optionally a NUL and `NAME=value` lines
// for the environment.
//
// Invariants: a refusal is invalid_request with a message; an accepted config has at least one
// provider and every tier entry names one of them; `describe` works on it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/load.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

using ib::fuzz::check;

ib::config::env_map parse_env(std::string_view text) {
  ib::config::env_map env;
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    env.insert_or_assign(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return env;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nul = input.find('\0');
  std::string_view json = input.substr(0, nul);
  ib::config::env_map env;
  if (nul != std::string_view::npos) {
    env = parse_env(input.substr(nul + 1));
  }
  auto cfg = ib::config::load(json, env);
  if (!cfg) {
    check(cfg.error().code == ib::errc::invalid_request, "a refusal that is not invalid_request",
          cfg.error().message);
    check(!cfg.error().message.empty(), "a refusal without a message");
    return 0;
  }
  for (const auto& t : cfg->tiers) {
    check(!t.entries.empty(), "an empty tier", t.name);
    for (const auto& e : t.entries) {
      check(cfg->find_provider(e.provider) != nullptr, "a tier entry names no provider",
            e.provider);
    }
  }
  std::string text = ib::config::describe(*cfg);
  check(!text.empty(), "an empty describe()");
  return 0;
}
