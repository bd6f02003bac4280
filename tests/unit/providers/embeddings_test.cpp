// POST /v1/embeddings (providers/embeddings.hpp): validation of the body, the forwarded body
// (only `model` patched), and the answer passed through.
#include "providers/embeddings.hpp"

#include <gtest/gtest.h>

#include "config/load.hpp"
#include "providers/front.hpp"

namespace ib::providers::embeddings {
namespace {

config::config sample() {
  auto cfg = config::load(R"({"providers": {"openai": {}, "together": {}, "anthropic": {}}})", {});
  EXPECT_TRUE(cfg);
  return cfg ? std::move(*cfg) : config::config{};
}

TEST(EmbeddingsParse, TheFourInputFormsAreAccepted) {
  for (const char* input : {R"("one text")", R"(["a", "b"])", R"([1, 2, 3])", R"([[1, 2], [3]])"}) {
    auto r = parse_request(std::string(R"({"model":"openai/x","input":)") + input + "}", {});
    ASSERT_TRUE(r) << input << ": " << r.error().message;
    EXPECT_EQ(r->api, client_api::embeddings);
    EXPECT_EQ(r->model, "openai/x");
    EXPECT_EQ(r->native_body, r->body);
    EXPECT_FALSE(r->stream);
  }
}

TEST(EmbeddingsParse, BadBodiesAre400sNamingTheField) {
  struct row {
    const char* body;
    const char* param;
  };
  const row rows[] = {
      {R"({"input":"x"})", "model"},
      {R"({"model":"openai/x"})", "input"},
      {R"({"model":"openai/x","input":""})", "input"},
      {R"({"model":"openai/x","input":[]})", "input"},
      {R"({"model":"openai/x","input":["a",1]})", "input"},
      {R"({"model":"openai/x","input":["a",""]})", "input"},
      {R"({"model":"openai/x","input":[1,-2]})", "input"},
      {R"({"model":"openai/x","input":[1.5]})", "input"},
      {R"({"model":"openai/x","input":[[1],[]]})", "input"},
      {R"({"model":"openai/x","input":[[1],["a"]]})", "input"},
      {R"({"model":"openai/x","input":{"text":"a"}})", "input"},
      {R"({"model":"openai/x","input":null})", "input"},
      {R"({"model":"openai/x","input":"a","encoding_format":"int8"})", "encoding_format"},
      {R"({"model":"openai/x","input":"a","stream":true})", "stream"},
  };
  for (const auto& r : rows) {
    auto got = parse_request(r.body, {});
    ASSERT_FALSE(got) << r.body;
    EXPECT_EQ(got.error().code, errc::invalid_request) << r.body;
    EXPECT_EQ(got.error().param, r.param) << r.body << ": " << got.error().message;
  }
  EXPECT_FALSE(parse_request("not json", {}));
  EXPECT_FALSE(parse_request("[]", {}));
}

TEST(EmbeddingsParse, EncodingFormatsPassThrough) {
  for (const char* f : {R"("float")", R"("base64")", "null"}) {
    auto r = parse_request(
        std::string(R"({"model":"m/x","input":"a","encoding_format":)") + f + "}", {});
    EXPECT_TRUE(r) << f;
  }
}

TEST(EmbeddingsEncode, OnlyTheModelChangesAndTheTargetIsEmbeddings) {
  const auto cfg = sample();
  const std::string body =
      R"({ "input" : ["a\u00e9", "b"], "model":"openai/text-embedding-3-small", "dimensions": 256,)"
      R"( "encoding_format":"base64", "user":"u-1" })";
  auto req = parse_request(body, {});
  ASSERT_TRUE(req);
  auto up = encode(*cfg.find_provider("openai"), *req, "text-embedding-3-small", "sk-test");
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->target, "/v1/embeddings");
  EXPECT_EQ(up->body,
            R"({ "input" : ["a\u00e9", "b"], "model":"text-embedding-3-small", "dimensions": 256,)"
            R"( "encoding_format":"base64", "user":"u-1" })");
  bool auth = false;
  for (const auto& [name, value] : up->headers) {
    auth = auth || (name == "authorization" && value == "Bearer sk-test");
  }
  EXPECT_TRUE(auth);
}

TEST(EmbeddingsEncode, AnthropicServesNoEmbeddings) {
  const auto cfg = sample();
  auto req = parse_request(R"({"model":"anthropic/x","input":"a"})", {});
  ASSERT_TRUE(req);
  auto up = encode(*cfg.find_provider("anthropic"), *req, "x", "k");
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code, errc::invalid_request);
}

TEST(EmbeddingsDecode, AListPassesThroughUnchangedWithItsUsage) {
  const auto cfg = sample();
  auto req = parse_request(R"({"model":"openai/x","input":"a"})", {});
  ASSERT_TRUE(req);
  const std::string body =
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAA"}],)"
      R"("model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}})";
  auto d = decode(*cfg.find_provider("openai"), *req, "x", {200, "application/json", body});
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_TRUE(d.body_is_input);
  EXPECT_EQ(d.model, "text-embedding-3-small");
  ASSERT_TRUE(d.tokens);
  EXPECT_EQ(d.tokens->prompt_tokens, 5);
  EXPECT_EQ(d.tokens->total_tokens, 5);
}

TEST(EmbeddingsDecode, NonListsAndErrorsAreNotSuccess) {
  const auto cfg = sample();
  const auto& p = *cfg.find_provider("openai");
  auto req = parse_request(R"({"model":"openai/x","input":"a"})", {});
  ASSERT_TRUE(req);
  for (const char* body :
       {"{}", "[]", "nope", R"({"data":{}})", R"({"error":{"message":"x"},"data":[]})"}) {
    auto d = decode(p, *req, "x", {200, "application/json", body});
    EXPECT_EQ(d.result, outcome::bad_response) << body;
  }
  auto d = decode(p, *req, "x", {503, "application/json", R"({"error":{"message":"busy"}})"});
  EXPECT_EQ(d.result, outcome::server_error);
  auto bad = decode(p, *req, "x",
                    {400, "application/json",
                     R"({"error":{"message":"bad input","type":"invalid_request_error"}})"});
  EXPECT_EQ(bad.result, outcome::request_rejected);
  EXPECT_EQ(bad.status, 400);
}

TEST(PatchModel, ReplacesOnlyTheModelValue) {
  auto req =
      parse_chat_request(R"({"a":1, "model" : "tier" ,"b":"model"})", {.require_messages = false});
  ASSERT_TRUE(req);
  EXPECT_EQ(patch_model(req->body, req->members, R"(x"y)"),
            R"({"a":1, "model" : "x\"y" ,"b":"model"})");
}

TEST(PatchModel, TheLastModelWinsAndAMissingOneIsAddedFirst) {
  auto req = parse_chat_request(R"({"model":"a","model":"b"})", {.require_messages = false});
  ASSERT_TRUE(req);
  EXPECT_EQ(patch_model(req->body, req->members, "m"), R"({"model":"a","model":"m"})");
  const std::vector<member_span> none;
  EXPECT_EQ(patch_model(R"({ "x":1})", none, "m"), R"({"model":"m", "x":1})");
  EXPECT_EQ(patch_model(R"({ })", none, "m"), R"({"model":"m" })");
}

}  // namespace
}  // namespace ib::providers::embeddings
