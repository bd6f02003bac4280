// libFuzzer target: the request log's stored records (core/request_record.cpp `from_stored`),
// which the gateway reads back from LMDB when it lists a user's requests.
//
// Invariants: a refusal is errc::storage with a message; an accepted record lists as one JSON
// object (`to_json`), and storing it again (`to_stored`) reads back to the same JSON.

#include "core/request_record.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ib::fuzz::check;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = ib::from_stored(bytes);
  if (!r) {
    check(r.error().code == ib::errc::storage, "a refusal is a storage error");
    check(!r.error().message.empty(), "a refusal has a message");
    return 0;
  }
  r->id = "req_fuzz";
  const std::string json = ib::to_json(*r);
  check(ib::fuzz::is_json_object(json), "a stored record lists as a JSON object", json);
  auto again = ib::from_stored(ib::to_stored(*r));
  check(again.has_value(), "a record stored again reads back");
  again->id = r->id;
  check(ib::to_json(*again) == json, "a record stored again lists the same", json);
  return 0;
}
