#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace ib::http {

// -- HTTP/1.1 message heads and chunk framing (RFC 9112) -----------------------------------------
//
// The server and the upstream client send a head as one string, then the body bytes. The heads
// are concatenated by hand rather than built as a Beast message and written by
// `http::serializer`: bench/http_serialize measured Beast's path at about ten times the CPU and
// 8–12 allocations per head (figures in wire.cpp and bench/README.md). Reason phrases are
// Beast's (`http::obsolete_reason`; a status Beast does not know gets an empty one, RFC 9112 §4).
//
// Header values are written as given, except that CR and LF become spaces: a value may carry
// upstream text (a model name) and must never split a header line. Names are written as given;
// the fields the writer adds itself are lower case. All functions are pure and thread-safe, and
// throw nothing but `std::bad_alloc`.

/// The head of a response: the status line (`HTTP/1.1 <status> <reason>`), `server:
/// server_name` (if not empty), `content-type` (unless empty or the status is 204/304),
/// `res.headers` in order, then the framing: `transfer-encoding: chunked` and `cache-control:
/// no-cache` when `chunked`; otherwise `content-length:` the size of `res.body` in bytes (0 when
/// `head_only`; none for 204/304); `connection: close` unless `keep_alive`; and the blank line.
/// `res.body` itself is not written.
std::string write_response_head(const response& res, std::string_view server_name, bool keep_alive,
                                bool chunked, bool head_only);

/// The head of an upstream `POST <target> HTTP/1.1`: `host: host`, `user-agent: inferbridge`,
/// `content-length: body_bytes`, then `headers` in order (the API key among them: never log the
/// result), and the blank line.
std::string write_request_head(std::string_view target, std::string_view host,
                               const header_list& headers, std::size_t body_bytes);

/// Appends `data` to `out` as one chunk of a chunked body (hex size, CRLF, data, CRLF); appends
/// nothing when `data` is empty (an empty chunk would end the body).
void append_chunk(std::string& out, std::string_view data);

/// Appends the last chunk (`0` CRLF CRLF, no trailers) that ends a chunked body.
void append_last_chunk(std::string& out);

}  // namespace ib::http
