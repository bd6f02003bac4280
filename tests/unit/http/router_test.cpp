#include "http/router.hpp"

#include <gtest/gtest.h>

namespace ib::http {
namespace {

// A table that is not the gateway's (app/routes.cpp has that): the matcher knows no paths.
constexpr route table[] = {
    {method::get, "/items", 1},
    {method::post, "/items", 2},
    {method::delete_, "/items/{id}", 3},
    {method::put, "/items/{id}", 4},
    {method::get, "/items/{id}/parts", 5},
    {method::head, "/probe", 6},
    {method::options, "/probe", 7},
    {method::get, "/a/fixed", 8},
    {method::get, "/a/{name}", 9},
    {method::get, "/zero", 0},      // id 0 is "no route": ignored
    {method::other, "/other", 10},  // never matchable: ignored
    {method::get, "/broken/{x", 11},
    {method::get, "/pre{x}", 12},
};

const router& r() {
  static const router instance{table};
  return instance;
}

TEST(Router, MatchesExactPathsByMethod) {
  EXPECT_EQ(r().match(method::get, "/items").id, 1);
  EXPECT_EQ(r().match(method::post, "/items").id, 2);
  EXPECT_EQ(r().match(method::get, "/items").error, errc::none);
}

TEST(Router, HeadFallsBackToGet) {
  EXPECT_EQ(r().match(method::head, "/items").id, 1);
  EXPECT_EQ(r().match(method::head, "/probe").id, 6);
  auto m = r().match(method::get, "/probe");  // HEAD does not imply GET
  EXPECT_EQ(m.error, errc::method_not_allowed);
  EXPECT_EQ(m.allow, "HEAD, OPTIONS");
}

TEST(Router, ParametersMatchOneNonEmptySegment) {
  auto m = r().match(method::delete_, "/items/42");
  EXPECT_EQ(m.id, 3);
  EXPECT_EQ(m.param, "42");
  EXPECT_EQ(r().match(method::put, "/items/x").id, 4);
  m = r().match(method::get, "/items/42/parts");
  EXPECT_EQ(m.id, 5);
  EXPECT_EQ(m.param, "42");
  EXPECT_EQ(r().match(method::delete_, "/items/").error, errc::not_found);
  EXPECT_EQ(r().match(method::delete_, "/items//parts").error, errc::not_found);
  EXPECT_EQ(r().match(method::delete_, "/items/1/2").error, errc::not_found);
}

TEST(Router, FirstMatchingPatternWins) {
  EXPECT_EQ(r().match(method::get, "/a/fixed").id, 8);
  auto m = r().match(method::get, "/a/other");
  EXPECT_EQ(m.id, 9);
  EXPECT_EQ(m.param, "other");
  // "/a/fixed" decides for its path even for a method only "/a/{name}" might have had.
  EXPECT_EQ(r().match(method::post, "/a/fixed").allow, "GET");
}

TEST(Router, WrongMethodIs405WithAllowInMethodOrder) {
  auto m = r().match(method::patch, "/items");
  EXPECT_EQ(m.id, 0);
  EXPECT_EQ(m.error, errc::method_not_allowed);
  EXPECT_EQ(m.allow, "GET, POST");
  EXPECT_EQ(m.param, "");
  EXPECT_EQ(r().match(method::get, "/items/7").allow, "PUT, DELETE");
  EXPECT_EQ(r().match(method::other, "/items").allow, "GET, POST");
}

TEST(Router, UnknownPathsAre404) {
  for (const char* p : {"", "/", "/item", "/items/", "/Items", "/items?x=1", "/zero", "/other",
                        "/a", "/a/", "/a/b/c", "/pre"}) {
    auto m = r().match(method::get, p);
    EXPECT_EQ(m.id, 0) << p;
    EXPECT_EQ(m.error, errc::not_found) << p;
    EXPECT_EQ(m.allow, "") << p;
  }
}

TEST(Router, BracesInsideASegmentAreLiteral) {
  EXPECT_EQ(r().match(method::get, "/broken/{x").id, 11);
  EXPECT_EQ(r().match(method::get, "/broken/1").error, errc::not_found);
  EXPECT_EQ(r().match(method::get, "/pre{x}").id, 12);
  EXPECT_EQ(r().match(method::get, "/pre1").error, errc::not_found);
}

TEST(Router, EmptyTableFindsNothing) {
  router none{std::span<const route>{}};
  EXPECT_EQ(none.match(method::get, "/").error, errc::not_found);
}

TEST(Message, QueryParamsAndPaths) {
  request req;
  req.target = "/v1/requests?limit=5&before=req_1";
  EXPECT_EQ(req.path(), "/v1/requests");
  EXPECT_EQ(query_param(req.query(), "limit"), "5");
  EXPECT_EQ(query_param(req.query(), "before"), "req_1");
  EXPECT_EQ(query_param(req.query(), "after"), "");
  EXPECT_EQ(query_param("a&b=2", "a"), "");
}

}  // namespace
}  // namespace ib::http
