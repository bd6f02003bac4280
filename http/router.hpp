#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "http/message.hpp"

namespace ib::http {

/// One row of a route table: `method` on a path matching `pattern` goes to handler `id`.
///
/// A pattern is a path of `/`-separated segments, compared byte for byte (case-sensitive, no
/// query). A whole segment written `{name}` matches any one non-empty segment and is returned as
/// the match's `param`; a pattern has at most one.
struct route {
  http::method method = method::get;
  std::string_view pattern;
  std::uint16_t id = 0;  ///< the caller's handler id; 0 means "no route" and is not allowed
};

/// What `router::match` found.
struct route_match {
  std::uint16_t id = 0;     ///< the matched row's id; 0 when `error` is set
  std::string_view param;   ///< the segment matched by the pattern's `{name}`, if any
  errc error = errc::none;  ///< not_found, or method_not_allowed (path known, method not)
  std::string_view allow;   ///< for method_not_allowed: the `Allow` header value ("GET, POST")
};

/// A generic (method, path) → handler id matcher, built once from a table; `match` is pure and
/// allocates nothing. Patterns are tried in table order and the first whose path matches
/// decides: its method's id, or 405 with the methods it has. HEAD is accepted where GET is
/// (and not listed in `Allow` unless a row names it).
class router {
 public:
  /// Groups the rows by pattern and renders each pattern's `Allow` value once.
  explicit router(std::span<const route> table);

  /// The handler for `m` on `path` (a path without its query), or not_found /
  /// method_not_allowed. The views point into `path` and into this router.
  route_match match(method m, std::string_view path) const noexcept;

 private:
  static constexpr std::size_t method_count = static_cast<std::size_t>(method::other) + 1;

  struct pattern_entry {
    std::string pattern;
    std::array<std::uint16_t, method_count> ids{};  ///< by method; 0 = not routed
    std::string allow;
  };

  std::vector<pattern_entry> patterns_;
};

}  // namespace ib::http
