#include "http/router.hpp"

namespace ib::http {

namespace {

constexpr std::size_t index_of(method m) noexcept {
  return static_cast<std::size_t>(m);
}

/// Whether `path` matches `pattern`; sets `param` to the segment a `{name}` segment matched.
bool path_matches(std::string_view pattern, std::string_view path,
                  std::string_view& param) noexcept {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < pattern.size() && j < path.size()) {
    if (pattern[i] == '{' && i > 0 && pattern[i - 1] == '/') {
      auto close = pattern.find('}', i);
      if (close != std::string_view::npos
          && (close + 1 == pattern.size() || pattern[close + 1] == '/')) {
        auto end = path.find('/', j);
        if (end == std::string_view::npos) {
          end = path.size();
        }
        if (end == j) {
          return false;  // an empty segment never fills a parameter
        }
        param = path.substr(j, end - j);
        i = close + 1;
        j = end;
        continue;
      }
    }
    if (pattern[i] != path[j]) {
      return false;
    }
    ++i;
    ++j;
  }
  return i == pattern.size() && j == path.size();
}

}  // namespace

router::router(std::span<const route> table) {
  for (const auto& r : table) {
    if (r.id == 0 || r.method == method::other) {
      continue;  // neither can ever be matched
    }
    pattern_entry* entry = nullptr;
    for (auto& p : patterns_) {
      if (p.pattern == r.pattern) {
        entry = &p;
        break;
      }
    }
    if (entry == nullptr) {
      entry = &patterns_.emplace_back();
      entry->pattern = std::string(r.pattern);
    }
    entry->ids[index_of(r.method)] = r.id;
  }
  for (auto& p : patterns_) {
    for (std::size_t i = 0; i < method_count; ++i) {
      if (p.ids[i] == 0) {
        continue;
      }
      if (!p.allow.empty()) {
        p.allow += ", ";
      }
      p.allow += to_string(static_cast<method>(i));
    }
  }
}

route_match router::match(method m, std::string_view path) const noexcept {
  for (const auto& p : patterns_) {
    std::string_view param;
    if (!path_matches(p.pattern, path, param)) {
      continue;
    }
    auto id = p.ids[index_of(m)];
    if (id == 0 && m == method::head) {
      id = p.ids[index_of(method::get)];
    }
    if (id == 0) {
      return {0, {}, errc::method_not_allowed, p.allow};
    }
    return {id, param, errc::none, {}};
  }
  return {0, {}, errc::not_found, {}};
}

}  // namespace ib::http
