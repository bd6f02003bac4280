#include "http/router.hpp"

#include <gtest/gtest.h>

namespace ib::http {
namespace {

TEST(Router, MapsEveryEndpoint) {
  EXPECT_EQ(match_route(method::post, "/v1/users").route, route::create_user);
  EXPECT_EQ(match_route(method::post, "/v1/keys").route, route::create_key);
  EXPECT_EQ(match_route(method::get, "/v1/keys").route, route::list_keys);
  EXPECT_EQ(match_route(method::post, "/v1/chat/completions").route, route::chat_completions);
  EXPECT_EQ(match_route(method::get, "/v1/models").route, route::list_models);
  EXPECT_EQ(match_route(method::get, "/v1/requests").route, route::list_requests);
  EXPECT_EQ(match_route(method::get, "/metrics").route, route::metrics);
  EXPECT_EQ(match_route(method::get, "/healthz").route, route::healthz);
  EXPECT_EQ(match_route(method::head, "/readyz").route, route::readyz);
  auto del = match_route(method::delete_, "/v1/keys/openai");
  EXPECT_EQ(del.route, route::delete_key);
  EXPECT_EQ(del.param, "openai");
}

TEST(Router, WrongMethodsAre405WithAllow) {
  auto m = match_route(method::get, "/v1/chat/completions");
  EXPECT_EQ(m.route, route::none);
  EXPECT_EQ(m.error, errc::method_not_allowed);
  EXPECT_EQ(m.allow, "POST");
  EXPECT_EQ(match_route(method::put, "/v1/keys").allow, "GET, POST");
  EXPECT_EQ(match_route(method::get, "/v1/keys/openai").allow, "DELETE");
  EXPECT_EQ(match_route(method::other, "/healthz").error, errc::method_not_allowed);
}

TEST(Router, UnknownPathsAre404) {
  for (const char* p : {"/", "/v1", "/v1/chat/completions/", "/v1/keys/a/b", "/v1/keys/",
                        "/V1/users", "/v1/users?x", ""}) {
    auto m = match_route(method::get, p);
    EXPECT_EQ(m.route, route::none) << p;
    EXPECT_EQ(m.error, errc::not_found) << p;
  }
}

TEST(Message, QueryParamsAndPaths) {
  request r;
  r.target = "/v1/requests?limit=5&before=req_1";
  EXPECT_EQ(r.path(), "/v1/requests");
  EXPECT_EQ(query_param(r.query(), "limit"), "5");
  EXPECT_EQ(query_param(r.query(), "before"), "req_1");
  EXPECT_EQ(query_param(r.query(), "after"), "");
  EXPECT_EQ(query_param("a&b=2", "a"), "");
  EXPECT_EQ(reason_phrase(424), "Failed Dependency");
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

}  // namespace
}  // namespace ib::http
