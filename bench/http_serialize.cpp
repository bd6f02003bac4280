// Micro-benchmark: the cost of writing the gateway's HTTP message heads, two ways.
//
//   hand:  the gateway's own writer, `ib::http::write_response_head` / `write_request_head`
//          (http/wire.hpp): one std::string, concatenated.
//   beast: the same heads as a `boost::beast::http::response<empty_body>` /
//          `request<empty_body>` whose fields are set one by one, written by
//          `http::serializer` into a std::string (defined below).
//
// Both produce the same bytes apart from the case of the framing fields Beast adds.
//
// For each of four typical heads it prints ns of thread CPU time per head (best of 5 runs of
// `--iterations` heads, so other processes on the machine disturb it little) and heap
// allocations per head (a counting global operator new). Run it by hand from
// a Release build; see bench/README.md for the recorded figures.
//
//   http_serialize [--iterations N (default 200000)]

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <time.h>

#include "http/message.hpp"
#include "http/wire.hpp"

// -- allocation counter ---------------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc{};
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

namespace bhttp = boost::beast::http;
using ib::http::header_list;
using ib::http::response;

// -- the Beast path -------------------------------------------------------------------------------

namespace beast = boost::beast;

/// `fields.insert(name, value)` with CR and LF in `value` replaced by spaces (as the hand path).
void insert_safe(bhttp::fields& fields, std::string_view name, std::string_view value) {
  if (std::memchr(value.data(), '\r', value.size()) == nullptr
      && std::memchr(value.data(), '\n', value.size()) == nullptr) {
    fields.insert(name, value);
    return;
  }
  std::string clean{value};
  for (char& c : clean) {
    if (c == '\r' || c == '\n') {
      c = ' ';
    }
  }
  fields.insert(name, clean);
}

/// The head of `m` as Beast's serializer writes it, into one string.
template <bool IsRequest>
std::string serialize_head(bhttp::message<IsRequest, bhttp::empty_body>& m) {
  bhttp::serializer<IsRequest, bhttp::empty_body> sr{m};
  sr.split(true);
  std::string out;
  beast::error_code ec;
  while (!ec && !sr.is_header_done()) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      const std::size_t n = beast::buffer_bytes(buffers);
      out.reserve(out.size() + n);
      for (auto b : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
      }
      sr.consume(n);
    });
  }
  return out;
}

std::string beast_response_head(const response& res, std::string_view server_name, bool keep_alive,
                                bool chunked) {
  bhttp::response<bhttp::empty_body> m;
  m.version(11);
  m.result(static_cast<unsigned>(res.status));
  if (!server_name.empty()) {
    insert_safe(m, "server", server_name);
  }
  const bool no_body = res.status == 204 || res.status == 304;
  if (!no_body && !res.content_type.empty()) {
    insert_safe(m, "content-type", res.content_type);
  }
  for (const auto& [name, value] : res.headers) {
    insert_safe(m, name, value);
  }
  if (chunked) {
    m.chunked(true);
    m.set(bhttp::field::cache_control, "no-cache");
  } else if (!no_body) {
    m.content_length(res.body.size());
  }
  if (!keep_alive) {
    m.keep_alive(false);
  }
  return serialize_head(m);
}

std::string beast_request_head(std::string_view target, std::string_view host,
                               const header_list& headers, std::size_t body_bytes) {
  bhttp::request<bhttp::empty_body> m{bhttp::verb::post, target, 11};
  m.set(bhttp::field::host, host);
  m.set(bhttp::field::user_agent, "inferbridge");
  m.content_length(body_bytes);
  for (const auto& [name, value] : headers) {
    insert_safe(m, name, value);
  }
  return serialize_head(m);
}

// -- the cases ------------------------------------------------------------------------------------

header_list gateway_headers() {
  return {{"x-request-id", "req_01JD6Q3ZK8W5YV7T2N4M9XH0AB"},
          {"x-inferbridge-tier", "fast"},
          {"x-inferbridge-provider", "groq"},
          {"x-inferbridge-model", "llama-3.1-8b-instant"},
          {"x-inferbridge-attempts", "openai=429,groq=200"}};
}

struct response_case {
  const char* name;
  response res;
  bool keep_alive;
  bool chunked;
};

std::vector<response_case> response_cases() {
  std::vector<response_case> out;
  response json;
  json.headers = gateway_headers();
  json.body.assign(620, 'x');
  out.push_back({"200 JSON, content-length", json, true, false});

  response sse;
  sse.content_type = "text/event-stream; charset=utf-8";
  sse.headers = gateway_headers();
  out.push_back({"200 SSE, chunked", sse, true, false});
  out.back().chunked = true;

  response err;
  err.status = 503;
  err.headers = gateway_headers();
  err.headers.emplace_back("x-should-retry", "false");
  err.headers.emplace_back("retry-after", "7");
  err.body.assign(240, 'x');
  out.push_back({"503 error, connection: close", err, false, false});
  return out;
}

// -- timing ---------------------------------------------------------------------------------------

struct figures {
  double ns = 0;
  double allocs = 0;
  std::size_t bytes = 0;
};

/// CPU time used by this thread, in ns.
std::int64_t thread_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

volatile std::size_t sink = 0;  // keeps the compiler from dropping the work

template <class F>
figures measure(int iterations, F&& make) {
  figures best;
  best.ns = 1e18;
  for (int run = 0; run < 5; ++run) {
    auto a0 = allocations.load(std::memory_order_relaxed);
    const auto t0 = thread_ns();
    std::size_t bytes = 0;
    for (int i = 0; i < iterations; ++i) {
      std::string s = make();
      bytes = s.size();
      sink = sink + static_cast<unsigned char>(s[s.size() / 2]);
    }
    const auto t1 = thread_ns();
    auto a1 = allocations.load(std::memory_order_relaxed);
    const double ns = static_cast<double>(t1 - t0) / iterations;
    if (ns < best.ns) {
      best = {ns, static_cast<double>(a1 - a0) / iterations, bytes};
    }
  }
  return best;
}

void report(const char* what, const figures& hand, const figures& beast) {
  std::printf(
      "%-32s hand %7.1f ns %4.1f allocs %4zu B | beast %7.1f ns %4.1f allocs %4zu B"
      " | +%6.1f ns\n",
      what, hand.ns, hand.allocs, hand.bytes, beast.ns, beast.allocs, beast.bytes,
      beast.ns - hand.ns);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view{argv[i]} == "--iterations") {
      iterations = std::max(1, std::atoi(argv[i + 1]));
    }
  }
  std::printf("http_serialize: %d heads per run, best of 5 runs\n", iterations);
  for (const auto& c : response_cases()) {
    auto hand = measure(iterations, [&] {
      return ib::http::write_response_head(c.res, "inferbridge", c.keep_alive, c.chunked, false);
    });
    auto beast = measure(iterations, [&] {
      return beast_response_head(c.res, "inferbridge", c.keep_alive, c.chunked);
    });
    report(c.name, hand, beast);
  }
  {
    header_list headers{{"content-type", "application/json"},
                        {"accept", "application/json"},
                        {"authorization", "Bearer sk-proj-0123456789abcdefghijklmnopqrstuvwxyz"}};
    const std::string target = "/openai/v1/chat/completions";
    const std::string host = "api.openai.com";
    auto hand = measure(iterations,
                        [&] { return ib::http::write_request_head(target, host, headers, 412); });
    auto beast =
        measure(iterations, [&] { return beast_request_head(target, host, headers, 412); });
    report("POST upstream, bearer auth", hand, beast);
  }
  return 0;
}
