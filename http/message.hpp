#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ib::http {

enum class method : std::uint8_t { get, head, post, put, patch, delete_, options, other };

std::string_view to_string(method m) noexcept;

/// At most this many request header fields are kept (`server_options::kept_headers`).
inline constexpr std::size_t max_kept_headers = 4;

/// A client request as handlers see it: no Beast types.
struct request {
  http::method method = method::other;
  std::string target;  ///< as received: path and query
  std::string body;
  /// The values of the fields named in `server_options::kept_headers`, in that order (the last
  /// one if a field repeats); empty if absent. No other header field is stored.
  std::array<std::string, max_kept_headers> headers;
  bool keep_alive = true;
  bool from_loopback = false;  ///< the peer address is a loopback address

  std::string_view path() const noexcept {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }
  std::string_view query() const noexcept {
    std::string_view t = target;
    auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
  }
};

/// Header fields: names are static strings (literals), values are owned.
using header_list = std::vector<std::pair<std::string_view, std::string>>;

/// A complete response (or, for `responder::stream_begin`, the head and first bytes of one).
struct response {
  int status = 200;
  std::string content_type = "application/json";
  header_list headers;
  std::string body;
};

/// The standard reason phrase of `status` ("OK", "Not Found", ...).
std::string_view reason_phrase(int status) noexcept;

/// The value of `name` in a query string (`a=1&b=2`), not percent-decoded; empty if absent.
std::string_view query_param(std::string_view query, std::string_view name) noexcept;

}  // namespace ib::http
