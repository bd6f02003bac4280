#pragma once

// Internal to http/: included by server.cpp, client.cpp and their tests only (it brings Beast).

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/optional.hpp>

#include "http/message.hpp"

namespace ib::http {

/// A header field a `head_parser` keeps, resolved once from its name: Beast's code for the name
/// (only `unknown` fields are compared by name, case-insensitively).
struct kept_field {
  boost::beast::http::field code = boost::beast::http::field::unknown;
  std::string name;
  /// A list-valued field (RFC 9110 §5.3, e.g. `Keep-Alive`): repeated lines are joined with
  /// ", ". Otherwise the last line wins.
  bool list = false;
};

/// Resolves `names` (any case) into kept fields, at most `max_kept_headers` of them (the rest
/// are ignored: callers check the count). None is list-valued.
std::vector<kept_field> resolve_kept(std::span<const std::string> names);

/// The HTTP/1.1 parser of both directions (RFC 9112), on Beast's `basic_parser`: it keeps the
/// start line, the values of a few header fields (`kept`, by index) and the de-chunked body,
/// instead of storing every field in a map (the OpenAI SDKs send a dozen).
///
/// Limits: `header_bytes` for the start line and fields (`error::header_limit` past it), and
/// `body_bytes` for the body bytes its sink takes (`error::body_limit` and `too_large()` past
/// it, on a chunked body too); Beast's own body limit is off. Any other malformed input fails
/// with Beast's parse errors (`error::bad_method`, `bad_field`, `bad_chunk`, ...). The parser
/// runs on the thread that feeds it; it is not thread-safe.
template <bool IsRequest>
class head_parser final : public boost::beast::http::basic_parser<IsRequest> {
 public:
  using error_code = boost::beast::error_code;    ///< Beast's (a boost::system one)
  using string_view = boost::beast::string_view;  ///< std::string_view here
  /// A body limit of "no limit" (a stream: timeouts bound it instead).
  static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

  /// `kept` must outlive the parser and hold at most `max_kept_headers` fields.
  head_parser(std::span<const kept_field> kept, std::uint32_t header_bytes, std::size_t body_bytes)
      : kept_(kept), limit_(body_bytes) {
    this->header_limit(header_bytes);
    this->body_limit(boost::none);
  }

  // -- what was parsed ----------------------------------------------------------------------------

  /// The request method (requests only; `other` for any method `http::method` does not name).
  http::method method() const noexcept { return method_; }
  /// The request target as received: path and query (requests only).
  std::string& target() noexcept { return target_; }
  /// The status code (responses only; 0 until the status line is parsed).
  int status() const noexcept { return status_; }
  /// The values of the kept fields, by index in `kept`; empty if absent.
  std::array<std::string, max_kept_headers>& values() noexcept { return values_; }
  /// The request carried `Expect: 100-continue` (requests only).
  bool expect_continue() const noexcept { return expect_continue_; }
  /// The body bytes taken so far when no other sink was set (see `sink`).
  std::string& body() noexcept { return body_; }
  /// The body exceeded the sink's limit.
  bool too_large() const noexcept { return too_large_; }
  /// The header had more fields than `field_limit` (the parse failed with `header_limit`).
  bool too_many_fields() const noexcept { return too_many_fields_; }
  /// The request target was longer than `target_limit` (failed with `header_limit`).
  bool target_too_long() const noexcept { return target_too_long_; }
  /// The start line was parsed (Beast parses it once the whole header is buffered).
  bool got_start_line() const noexcept { return got_start_line_; }

  /// At most `n` header fields (the default: no limit); one more fails the parse with
  /// `error::header_limit` and `too_many_fields()`.
  void field_limit(std::size_t n) noexcept { field_limit_ = n; }
  /// A request target of at most `n` bytes (the default: only the header limit); longer fails
  /// with `error::header_limit` and `target_too_long()`.
  void target_limit(std::size_t n) noexcept { target_limit_ = n; }

  /// From now on, body bytes are appended to `*to` (which must outlive the parsing), at most
  /// `limit` bytes in all from now on.
  void sink(std::string* to, std::size_t limit) noexcept {
    sink_ = to;
    limit_ = limit;
    taken_ = 0;
  }

  /// A declared Content-Length of at most `bytes` (and within the body limit) is reserved in
  /// the sink at once, saving the reallocations as the body arrives. 0 (the default) reserves
  /// nothing: a peer could otherwise make us allocate a body it never sends.
  void reserve_up_to(std::size_t bytes) noexcept { reserve_limit_ = bytes; }

 private:
  void on_request_impl(boost::beast::http::verb verb, string_view, string_view target, int,
                       error_code& ec) override {
    got_start_line_ = true;
    if constexpr (IsRequest) {
      if (target.size() > target_limit_) {
        target_too_long_ = true;
        ec = boost::beast::http::error::header_limit;
        return;
      }
      method_ = to_method(verb);
      target_.assign(target.data(), target.size());
    } else {
      ec = boost::beast::http::error::bad_method;  // Beast never calls it for a response
    }
  }

  void on_response_impl(int code, string_view, int, error_code& ec) override {
    got_start_line_ = true;
    if constexpr (IsRequest) {
      ec = boost::beast::http::error::bad_status;  // Beast never calls it for a request
    } else {
      status_ = code;
    }
  }

  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override {
    if (++fields_ > field_limit_) {
      too_many_fields_ = true;
      ec = boost::beast::http::error::header_limit;
      return;
    }
    if constexpr (IsRequest) {
      if (name == boost::beast::http::field::expect) {
        expect_continue_ = boost::beast::iequals(value, "100-continue");
      }
    }
    for (std::size_t i = 0; i < kept_.size() && i < max_kept_headers; ++i) {
      const kept_field& k = kept_[i];
      if (k.code != name
          || (name == boost::beast::http::field::unknown
              && !boost::beast::iequals(name_string, k.name))) {
        continue;
      }
      std::string& slot = values_[i];
      if (k.list && !slot.empty()) {
        slot += ", ";
        slot.append(value.data(), value.size());
      } else {
        slot.assign(value.data(), value.size());
      }
      return;
    }
  }

  void on_header_impl(error_code&) override {}

  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length && *length <= reserve_limit_ && *length <= limit_) {
      target_sink().reserve(static_cast<std::size_t>(*length));
    }
  }

  std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }

  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return take(body, ec);
  }

  void on_finish_impl(error_code&) override {}

  std::size_t take(string_view bytes, error_code& ec) {
    if (bytes.size() > limit_ - taken_) {
      too_large_ = true;
      ec = boost::beast::http::error::body_limit;
      return 0;
    }
    taken_ += bytes.size();
    target_sink().append(bytes.data(), bytes.size());
    return bytes.size();
  }

  std::string& target_sink() noexcept { return sink_ != nullptr ? *sink_ : body_; }

  static http::method to_method(boost::beast::http::verb v) noexcept {
    using boost::beast::http::verb;
    switch (v) {
      case verb::get:
        return method::get;
      case verb::head:
        return method::head;
      case verb::post:
        return method::post;
      case verb::put:
        return method::put;
      case verb::patch:
        return method::patch;
      case verb::delete_:
        return method::delete_;
      case verb::options:
        return method::options;
      default:
        return method::other;
    }
  }

  std::span<const kept_field> kept_;
  std::array<std::string, max_kept_headers> values_;
  std::string target_;
  std::string body_;
  std::string* sink_ = nullptr;
  std::size_t limit_ = unlimited;
  std::size_t taken_ = 0;
  std::size_t reserve_limit_ = 0;
  std::size_t field_limit_ = unlimited;
  std::size_t fields_ = 0;
  std::size_t target_limit_ = unlimited;
  int status_ = 0;
  http::method method_ = method::other;
  bool expect_continue_ = false;
  bool too_large_ = false;
  bool too_many_fields_ = false;
  bool target_too_long_ = false;
  bool got_start_line_ = false;
};

/// Parses client requests (server side).
using request_parser = head_parser<true>;
/// Parses upstream responses (client side).
using response_parser = head_parser<false>;

}  // namespace ib::http
