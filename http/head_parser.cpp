#include "http/head_parser.hpp"

namespace ib::http {

std::vector<kept_field> resolve_kept(std::span<const std::string> names) {
  std::vector<kept_field> out;
  for (const auto& n : names) {
    if (out.size() == max_kept_headers) {
      break;
    }
    out.push_back({boost::beast::http::string_to_field(n), n, false});
  }
  return out;
}

}  // namespace ib::http
