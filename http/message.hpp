#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ib::http {

/// The request methods this layer distinguishes (RFC 9110 §9); any other is `other`.
enum class method : std::uint8_t { get, head, post, put, patch, delete_, options, other };

/// The method's token as on the wire ("GET", ...); "OTHER" for `method::other`.
std::string_view to_string(method m) noexcept;

/// At most this many request header fields are kept (`server_options::kept_headers`).
inline constexpr std::size_t max_kept_headers = 8;

/// A client request as handlers see it (no Beast types): built by the server on an I/O thread,
/// then owned by the handler.
struct request {
  http::method method = method::other;
  std::string target;  ///< as received: path and query
  std::string body;    ///< de-chunked; at most `server_options::max_body_bytes`
  /// The values of the fields named in `server_options::kept_headers`, in that order (the last
  /// one if a field repeats); empty if absent. No other header field is stored.
  std::array<std::string, max_kept_headers> headers;
  bool from_loopback = false;  ///< the peer address is a loopback address
  /// The peer's IP address as text (`127.0.0.1`, `::1`; IPv4-mapped IPv6 as asio prints it);
  /// empty if unknown. The TCP peer, not a forwarded-for header.
  std::string peer;

  /// The target up to its `?`: the path, not percent-decoded.
  std::string_view path() const noexcept {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }
  /// The target after its first `?` (empty if none), not percent-decoded.
  std::string_view query() const noexcept {
    std::string_view t = target;
    auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
  }
};

/// Header fields in the order they are sent: names are static strings (literals, lower case),
/// values are owned. Used by responses and upstream requests.
using header_list = std::vector<std::pair<std::string_view, std::string>>;

/// A complete response (or, for `responder::stream_begin`, the head and first bytes of one).
/// The server adds the framing (`content-length` or chunked), `server` and `connection`.
struct response {
  int status = 200;                               ///< 100–999; the reason phrase is Beast's
  std::string content_type = "application/json";  ///< empty sends no `content-type`
  header_list headers;                            ///< sent after `content-type`, in order
  std::string body;                               ///< bytes, sent as they are
};

/// The value of `name` in a query string (`a=1&b=2`; the first match), not percent-decoded;
/// empty if absent or given without `=`. Allocates nothing: the view points into `query`.
std::string_view query_param(std::string_view query, std::string_view name) noexcept;

}  // namespace ib::http
