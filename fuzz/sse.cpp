// libFuzzer target: the incremental SSE parser (providers/sse.cpp), against a plain line-based
// reading of the WHATWG rules (HTML §9.2.6) written here, with the input split into reads by
// byte 0; and `append_sse_data` → parser round trips.
//
// Invariants: the same events (name and data) as the reference, whatever the split; an event's
// name holds no line break; a small size limit stops the parser (false) and never lets an event
// past it be dispatched.

#include "providers/sse.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.hpp"

namespace {

using ib::fuzz::check;
using ib::providers::sse_event;

/// The events of `text` by the spec's reading, line by line (a last line without its end is not
/// processed, as a stream still open would leave it).
std::vector<sse_event> reference(std::string_view text, std::size_t& comments) {
  std::vector<sse_event> events;
  sse_event cur;
  bool has_data = false;
  std::size_t i = 0;
  while (true) {
    auto eol = text.find_first_of("\r\n", i);
    if (eol == std::string_view::npos) {
      break;
    }
    std::string_view line = text.substr(i, eol - i);
    i = eol + 1;
    if (text[eol] == '\r' && i < text.size() && text[i] == '\n') {
      ++i;
    }
    if (line.empty()) {
      if (has_data) {
        events.push_back(cur);
      }
      cur = {};
      has_data = false;
      continue;
    }
    if (line.front() == ':') {
      ++comments;
      continue;
    }
    auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
      }
    }
    if (field == "data") {
      if (has_data) {
        cur.data.push_back('\n');
      }
      cur.data.append(value);
      has_data = true;
    } else if (field == "event") {
      cur.event.assign(value);
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  ib::fuzz::splitter cut(data[0]);
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::size_t want_comments = 0;
  const std::vector<sse_event> want = reference(text, want_comments);

  // No limit in reach: the parser must agree with the reference exactly.
  {
    ib::providers::sse_parser p;
    std::vector<sse_event> got;
    std::string_view rest = text;
    while (!rest.empty()) {
      auto n = cut.next(rest.size());
      bool ok = p.feed(rest.substr(0, n), [&](const sse_event& e) { got.push_back(e); });
      check(ok, "the parser stopped below its limit");
      rest.remove_prefix(n);
    }
    check(got.size() == want.size(), "a different number of events than the reference");
    for (std::size_t k = 0; k < got.size(); ++k) {
      check(got[k].event == want[k].event, "a different event name than the reference",
            got[k].event);
      check(got[k].data == want[k].data, "different event data than the reference", got[k].data);
      check(got[k].event.find_first_of("\r\n") == std::string::npos, "an event name with a break");
    }
    check(p.comments() == want_comments, "a different comment count than the reference");
  }

  // A small limit: events are the reference's first ones, none larger than the limit.
  {
    constexpr std::size_t limit = 32;
    ib::providers::sse_parser p(limit);
    std::vector<sse_event> got;
    bool ok = p.feed(text, [&](const sse_event& e) { got.push_back(e); });
    check(got.size() <= want.size(), "more events under a limit than without");
    for (std::size_t k = 0; k < got.size(); ++k) {
      check(got[k].data == want[k].data, "a limited parser changed an event's data");
      check(got[k].data.size() <= limit, "an event past the limit was dispatched");
    }
    if (ok) {
      check(got.size() == want.size(), "a parser that did not stop lost events");
    }
  }

  // What the gateway writes reads back as one event with the same data.
  {
    std::string payload;
    for (char c : text) {
      if (c != '\r' && c != '\n') {
        payload.push_back(c);
      }
    }
    std::string wire;
    ib::providers::append_sse_data(wire, payload);
    ib::providers::sse_parser p;
    std::vector<sse_event> got;
    p.feed(wire, [&](const sse_event& e) { got.push_back(e); });
    check(got.size() == 1 && got[0].data == payload && got[0].event.empty(),
          "append_sse_data does not read back", payload);
    check(!p.has_partial(), "a partial event after a complete one");
  }
  return 0;
}
