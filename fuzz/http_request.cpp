// libFuzzer target: the HTTP/1.1 head parser (http/head_parser.hpp) as the server drives it, and
// the gateway's router (http/router.cpp over app/routes.cpp) on the parsed target; with the
// mode bit set, the same parser as the upstream client drives it for responses.
//
// Input: byte 0 = mode (bit 0: response; bit 1: EOF after the last byte; bit 2: the header
// count and target length limits of issue 18 set, small), byte 1 = how the bytes
// are split into reads, then the wire bytes. Up to 4 pipelined messages are parsed, each by a
// fresh parser on what the previous one left, as the server's session does.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "app/routes.hpp"
#include "fuzz/fuzz_support.hpp"
#include "http/head_parser.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

namespace {

namespace bhttp = boost::beast::http;
using ib::fuzz::check;

constexpr std::uint32_t header_limit = 2048;  // small, so the limit is reached
constexpr std::size_t body_limit = 1024;
constexpr std::size_t field_limit = 8;    // limits.max_header_count, small
constexpr std::size_t target_limit = 64;  // limits.max_url_bytes, small

const std::vector<ib::http::kept_field>& request_fields() {
  static const std::vector<std::string> names(ib::app::kept_header_names.begin(),
                                              ib::app::kept_header_names.end());
  static const auto kept = ib::http::resolve_kept(names);
  return kept;
}

const std::array<ib::http::kept_field, 4>& response_fields() {  // as http/client.cpp keeps them
  static const std::array<ib::http::kept_field, 4> fields{{
      {bhttp::field::content_type, "content-type", false},
      {bhttp::field::retry_after, "retry-after", false},
      {bhttp::field::unknown, "retry-after-ms", false},
      {bhttp::field::keep_alive, "keep-alive", true},
  }};
  return fields;
}

/// Parses one message from `pending` + `wire` (split by `cut`); consumes what it used. True
/// when a complete message was parsed.
template <bool IsRequest>
bool parse_one(ib::http::head_parser<IsRequest>& p, std::string& pending, std::string_view& wire,
               ib::fuzz::splitter& cut, bool eof) {
  p.eager(true);
  boost::beast::error_code ec;
  while (!p.is_done()) {
    if (!wire.empty()) {
      auto n = cut.next(wire.size());
      pending.append(wire.substr(0, n));
      wire.remove_prefix(n);
    }
    auto used = p.put(boost::asio::buffer(pending), ec);
    check(used <= pending.size(), "put used more than it was given");
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (wire.empty()) {
        break;
      }
      continue;
    }
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        check(p.too_large(), "body_limit without too_large()");
      }
      return false;
    }
    if (used == 0 && wire.empty()) {
      break;
    }
  }
  // As Beast's read does at EOF: end_of_stream, unless the message had begun.
  if (eof && !p.is_done() && wire.empty() && p.got_some()) {
    p.put_eof(ec);
    if (ec) {
      return false;
    }
  }
  return p.is_done();
}

void route(ib::http::request_parser& p) {
  ib::http::request req;
  req.method = p.method();
  req.target = std::move(p.target());
  req.headers = std::move(p.values());
  req.body = std::move(p.body());
  check(!req.target.empty(), "a parsed request has an empty target");
  check(req.body.size() <= body_limit, "body beyond its limit");
  std::string_view path = req.path();
  std::string_view query = req.query();
  check(path.size() + (query.data() != nullptr ? query.size() + 1 : 0) <= req.target.size(),
        "path and query longer than the target");
  auto m = ib::app::routes().match(req.method, path);
  if (m.id != 0) {
    check(m.error == ib::errc::none, "a match with an error");
  } else {
    check(m.error == ib::errc::not_found || m.error == ib::errc::method_not_allowed,
          "no match without not_found / method_not_allowed");
  }
  if (m.error == ib::errc::method_not_allowed) {
    check(!m.allow.empty(), "405 without Allow");
  }
  if (!m.param.empty()) {
    check(m.param.data() >= path.data()
              && m.param.data() + m.param.size() <= path.data() + path.size(),
          "param outside the path");
    check(m.param.find('/') == std::string_view::npos, "param spans segments");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  const bool response = (data[0] & 1) != 0;
  const bool eof = (data[0] & 2) != 0;
  const bool limited = (data[0] & 4) != 0;
  ib::fuzz::splitter cut(data[1]);
  std::string_view wire(reinterpret_cast<const char*>(data + 2), size - 2);
  std::string pending;
  for (int i = 0; i < 4; ++i) {
    if (response) {
      ib::http::response_parser p(response_fields(), header_limit, body_limit);
      std::string body;
      p.sink(&body, body_limit);
      p.reserve_up_to(body_limit);
      if (!parse_one(p, pending, wire, cut, eof)) {
        return 0;
      }
      check(p.status() >= 0 && p.status() <= 999, "status out of range");
      check(body.size() <= body_limit, "body beyond its limit");
      if (!p.keep_alive()) {
        return 0;
      }
    } else {
      ib::http::request_parser p(request_fields(), header_limit, body_limit);
      p.reserve_up_to(body_limit);
      if (limited) {
        p.field_limit(field_limit);
        p.target_limit(target_limit);
      }
      if (!parse_one(p, pending, wire, cut, eof)) {
        if (p.too_many_fields() || p.target_too_long()) {
          check(limited, "a field or target limit hit without one set");
        }
        return 0;
      }
      check(!p.too_many_fields() && !p.target_too_long(), "a limit flag on a parsed request");
      if (limited) {
        check(p.target().size() <= target_limit, "a target beyond its limit");
      }
      bool keep_alive = p.keep_alive();
      route(p);
      if (!keep_alive) {
        return 0;
      }
    }
  }
  return 0;
}
