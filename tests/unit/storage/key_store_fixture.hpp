#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "storage/key_store.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace ib::storage::test {

inline constexpr std::int64_t t0 = 1'700'000'000;
inline constexpr std::int64_t us = 1'000'000;

using strings = std::vector<std::string>;

/// A key_store in a fresh temporary directory, with helpers to make users, keys and records.
class store_fixture : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path() + "/data";
    open();
  }

  void open(std::size_t map_size = std::size_t{1} << 32) {
    store_.reset();
    auto s = key_store::open(dir_, map_size);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  user_record make_user(const std::string& email) {
    auto u = store_->create_user(email, sha256(new_gateway_key()), t0);
    EXPECT_TRUE(u) << u.error().message;
    return u ? *u : user_record{};
  }

  static provider_key_record key_rec(std::string provider, std::string token) {
    return {std::move(provider), std::move(token), "sk-\u2026wxyz", t0};
  }

  static request_record req(std::string user, std::string id, std::int64_t created_s) {
    request_record r;
    r.id = std::move(id);
    r.user_id = std::move(user);
    r.created_us = created_s * us;
    r.tier = "ib/cheap";
    r.model = "ib/cheap";
    r.provider = "groq";
    r.upstream_model = "llama";
    r.attempts = {{"groq", 200, "", 12}};
    r.status = 200;
    r.latency_ms = 12;
    return r;
  }

  std::vector<std::string> ids(const key_store::page& p) {
    std::vector<std::string> out;
    for (const auto& j : p.records_json) {
      rapidjson::Document d;
      d.Parse(j.data(), j.size());
      EXPECT_FALSE(d.HasParseError()) << j;
      if (!d.HasParseError() && d.IsObject() && d.HasMember("id") && d["id"].IsString()) {
        out.emplace_back(d["id"].GetString());
      }
    }
    return out;
  }

  std::vector<std::string> all_ids(const std::string& user) {
    auto p = store_->list_requests(user, 1000, "");
    EXPECT_TRUE(p);
    return p ? ids(*p) : std::vector<std::string>{};
  }

  temp_dir tmp_;
  std::string dir_;
  std::unique_ptr<key_store> store_;
};

}  // namespace ib::storage::test
