#include "app/routes.hpp"

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ib::app {
namespace {

using http::method;

constexpr method every_method[] = {method::get,   method::head,    method::post,    method::put,
                                   method::patch, method::delete_, method::options, method::other};

struct row {
  method m;
  std::string path;  ///< a concrete path (a parameter filled in)
  endpoint e;
};

/// The gateway's endpoints, as the README lists them.
const std::vector<row>& endpoints() {
  static const std::vector<row> rows = {
      {method::post, "/v1/users", endpoint::create_user},
      {method::post, "/v1/keys", endpoint::create_key},
      {method::get, "/v1/keys", endpoint::list_keys},
      {method::delete_, "/v1/keys/openai", endpoint::delete_key},
      {method::post, "/v1/chat/completions", endpoint::chat_completions},
      {method::get, "/v1/models", endpoint::list_models},
      {method::get, "/v1/requests", endpoint::list_requests},
      {method::get, "/metrics", endpoint::metrics},
      {method::get, "/healthz", endpoint::healthz},
      {method::get, "/readyz", endpoint::readyz},
      {method::post, "/v1/responses", endpoint::responses},
      {method::post, "/v1/messages", endpoint::messages},
      {method::post, "/v1/messages/count_tokens", endpoint::count_tokens},
      {method::post, "/v1/embeddings", endpoint::embeddings},
      {method::post, "/v1/moderations", endpoint::openai_passthrough},
      {method::post, "/v1/audio/transcriptions", endpoint::openai_passthrough},
      {method::post, "/v1/audio/translations", endpoint::openai_passthrough},
      {method::post, "/v1/audio/speech", endpoint::openai_passthrough},
      {method::post, "/v1/images/generations", endpoint::openai_passthrough},
      {method::post, "/v1/images/edits", endpoint::openai_passthrough},
      {method::post, "/v1/images/variations", endpoint::openai_passthrough},
      {method::get, "/v1/files", endpoint::openai_passthrough},
      {method::post, "/v1/files", endpoint::openai_passthrough},
      {method::get, "/v1/files/file-1", endpoint::openai_passthrough},
      {method::delete_, "/v1/files/file-1", endpoint::openai_passthrough},
      {method::get, "/v1/files/file-1/content", endpoint::openai_passthrough},
      {method::get, "/v1/batches", endpoint::openai_passthrough},
      {method::post, "/v1/batches", endpoint::openai_passthrough},
      {method::get, "/v1/batches/batch_1", endpoint::openai_passthrough},
      {method::post, "/v1/batches/batch_1/cancel", endpoint::openai_passthrough},
      {method::post, "/v1/uploads", endpoint::openai_passthrough},
      {method::post, "/v1/uploads/upload_1/parts", endpoint::openai_passthrough},
      {method::post, "/v1/uploads/upload_1/complete", endpoint::openai_passthrough},
      {method::post, "/v1/uploads/upload_1/cancel", endpoint::openai_passthrough},
      {method::get, "/v1/responses/resp_1", endpoint::openai_passthrough},
      {method::delete_, "/v1/responses/resp_1", endpoint::openai_passthrough},
      {method::post, "/v1/responses/resp_1/cancel", endpoint::openai_passthrough},
      {method::get, "/v1/responses/resp_1/input_items", endpoint::openai_passthrough},
  };
  return rows;
}

/// The `Allow` value each path must get on a wrong method.
const std::map<std::string, std::string>& allowed() {
  static const std::map<std::string, std::string> allow = {
      {"/v1/users", "POST"},
      {"/v1/keys", "GET, POST"},
      {"/v1/keys/openai", "DELETE"},
      {"/v1/chat/completions", "POST"},
      {"/v1/models", "GET"},
      {"/v1/requests", "GET"},
      {"/metrics", "GET"},
      {"/healthz", "GET"},
      {"/readyz", "GET"},
      {"/v1/responses", "POST"},
      {"/v1/messages", "POST"},
      {"/v1/embeddings", "POST"},
      {"/v1/files", "GET, POST"},
      {"/v1/files/file-1", "GET, DELETE"},
      {"/v1/responses/resp_1", "GET, DELETE"},
  };
  return allow;
}

std::string readme_endpoints() {
  std::ifstream in{std::string(IB_TEST_DATA_DIR) + "/../../README.md"};
  std::stringstream all;
  all << in.rdbuf();
  auto text = all.str();
  auto begin = text.find("## Endpoints");
  if (begin == std::string::npos) {
    return {};
  }
  auto end = text.find("\n## ", begin + 1);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

method parse_method(const std::string& name) {
  for (auto m : every_method) {
    if (http::to_string(m) == name) {
      return m;
    }
  }
  return method::other;
}

TEST(Routes, EveryEndpointResolves) {
  for (const auto& r : endpoints()) {
    auto m = routes().match(r.m, r.path);
    EXPECT_EQ(endpoint_of(m), r.e) << http::to_string(r.m) << " " << r.path;
    EXPECT_EQ(m.error, errc::none) << r.path;
  }
  EXPECT_EQ(routes().match(method::delete_, "/v1/keys/anthropic").param, "anthropic");
  EXPECT_EQ(endpoint_of(routes().match(method::head, "/readyz")), endpoint::readyz);
  EXPECT_EQ(endpoint_of(routes().match(method::head, "/v1/models")), endpoint::list_models);
}

TEST(Routes, EveryEndpointOfTheReadmeResolves) {
  auto section = readme_endpoints();
  ASSERT_FALSE(section.empty()) << "README.md has no \"## Endpoints\" section";
  std::regex item{"`(GET|POST|PUT|PATCH|DELETE) (/[^` ]*)`"};
  int found = 0;
  for (std::sregex_iterator it{section.begin(), section.end(), item}, end; it != end; ++it) {
    auto path = std::regex_replace((*it)[2].str(), std::regex{"\\{[a-z_]+\\}"}, "x");
    auto m = routes().match(parse_method((*it)[1].str()), path);
    EXPECT_NE(endpoint_of(m), endpoint::none) << it->str();
    ++found;
  }
  // Every endpoint of the table is in the README, and no more.
  EXPECT_EQ(found, static_cast<int>(endpoints().size()));
}

TEST(Routes, WrongMethodsAre405WithAllow) {
  for (const auto& [path, allow] : allowed()) {
    for (auto m : every_method) {
      bool routed = false;
      for (const auto& r : endpoints()) {
        routed =
            routed || (r.path == path && (r.m == m || (m == method::head && r.m == method::get)));
      }
      auto got = routes().match(m, path);
      if (routed) {
        EXPECT_EQ(got.error, errc::none) << http::to_string(m) << " " << path;
        continue;
      }
      EXPECT_EQ(endpoint_of(got), endpoint::none) << http::to_string(m) << " " << path;
      EXPECT_EQ(got.error, errc::method_not_allowed) << http::to_string(m) << " " << path;
      EXPECT_EQ(got.allow, allow) << http::to_string(m) << " " << path;
    }
  }
}

TEST(Routes, UnknownPathsAre404) {
  for (const char* p : {"/", "/v1", "/v1/", "/v1/chat/completions/", "/v1/chat", "/v1/keys/a/b",
                        "/v1/keys/", "/v1/users/", "/V1/users", "/v1/users?x", "//v1/users",
                        "/healthz/", "/metricsx", "/v2/models", ""}) {
    for (auto m : every_method) {
      auto got = routes().match(m, p);
      EXPECT_EQ(endpoint_of(got), endpoint::none) << p;
      EXPECT_EQ(got.error, errc::not_found) << p;
      EXPECT_EQ(got.allow, "") << p;
    }
  }
}

TEST(Routes, KeptHeadersAreTheOnesTheEndpointsRead) {
  EXPECT_EQ(kept_header_names[authorization_header], "authorization");
  EXPECT_EQ(kept_header_names[timeout_header], "x-inferbridge-timeout-ms");
}

// -- newcomer check: adding an endpoint the way docs/where-things-go.md says
// -----------------------

/// An endpoint that is not (yet) in `endpoint`: the id after the last one.
constexpr std::uint16_t thing_id = static_cast<std::uint16_t>(endpoint::readyz) + 1;

/// The gateway's table plus one row, as step 1 of "An endpoint" adds it to app/routes.cpp.
std::vector<http::route> table_with_a_new_endpoint() {
  std::vector<http::route> rows{route_table().begin(), route_table().end()};
  rows.push_back({method::get, "/v1/things/{id}", thing_id});
  return rows;
}

TEST(RoutesNewcomer, TheRouterIsBuiltFromTheTable) {
  // Every endpoint resolves through the table the doc points at, and nothing else.
  http::router from_table{route_table()};
  for (const auto& r : endpoints()) {
    EXPECT_EQ(from_table.match(r.m, r.path).id, routes().match(r.m, r.path).id) << r.path;
  }
  EXPECT_EQ(route_table().size(), endpoints().size()) << "a row of the table is not in endpoints()";
}

TEST(RoutesNewcomer, ANewRowIsMatchedWithItsParameter) {
  const auto rows = table_with_a_new_endpoint();
  http::router r{rows};
  auto m = r.match(method::get, "/v1/things/42");
  EXPECT_EQ(m.error, errc::none);
  EXPECT_EQ(m.id, thing_id);
  EXPECT_EQ(m.param, "42");
  EXPECT_EQ(r.match(method::head, "/v1/things/42").id, thing_id);  // HEAD wherever GET is
  // 405 and Allow come from the table; no other code is needed.
  auto wrong = r.match(method::post, "/v1/things/42");
  EXPECT_EQ(wrong.error, errc::method_not_allowed);
  EXPECT_EQ(wrong.allow, "GET");
  EXPECT_EQ(r.match(method::get, "/v1/things").error, errc::not_found);
  EXPECT_EQ(r.match(method::get, "/v1/things/42/x").error, errc::not_found);
}

TEST(RoutesNewcomer, ANewRowLeavesTheOtherEndpointsAlone) {
  const auto rows = table_with_a_new_endpoint();
  http::router r{rows};
  for (const auto& e : endpoints()) {
    auto m = r.match(e.m, e.path);
    EXPECT_EQ(endpoint_of(m), e.e) << e.path;
  }
  for (const auto& [path, allow] : allowed()) {
    EXPECT_EQ(r.match(method::patch, path).allow, allow) << path;
  }
}

}  // namespace
}  // namespace ib::app
