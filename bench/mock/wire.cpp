#include "bench/mock/wire.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <span>
#include <vector>

#include <rapidjson/document.h>

namespace ib::mock {

namespace {

constexpr std::string_view created = "1732000000";
constexpr std::string_view tool_call_id = "call_mock_1";
constexpr std::string_view tool_use_id = "toolu_mock_1";
constexpr std::string_view tool_arguments = R"({"city":"Pune","unit":"c"})";
// The same arguments in the pieces a stream sends them in; one piece is empty, as upstreams do.
constexpr std::array<std::string_view, 4> tool_argument_pieces = {"", R"({"city":"Pu)",
                                                                  R"(ne","unit":)", R"("c"})"};
constexpr std::string_view hindi_first = " नमस्ते, ";
constexpr std::string_view hindi_second = "मैं आपकी कैसे मदद कर सकता हूँ?";
constexpr std::string_view utf8_suffix = " ✓ नमस्ते";
constexpr std::size_t echo_limit = 60;
constexpr std::size_t big_chunk_bytes = 1 << 20;

std::string_view view(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) {
    return nullptr;
  }
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string_view> string_member(const rapidjson::Value& obj, const char* key) {
  auto* v = member(obj, key);
  if (v == nullptr || !v->IsString()) {
    return std::nullopt;
  }
  return view(*v);
}

/// The text of a message's `content`: a string, or the `text` of its text parts joined.
std::string content_text(const rapidjson::Value* content) {
  std::string out;
  if (content == nullptr) {
    return out;
  }
  if (content->IsString()) {
    out = std::string(view(*content));
  } else if (content->IsArray()) {
    for (const auto& part : content->GetArray()) {
      auto type = string_member(part, "type");
      auto text = string_member(part, "text");
      if (type && *type == "text" && text) {
        out += *text;
      }
    }
  }
  return out;
}

/// At most `limit` bytes of `s`, cut back to a UTF-8 character boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t limit) {
  if (s.size() <= limit) {
    return s;
  }
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
    --end;
  }
  return s.substr(0, end);
}

int tokens_for(std::size_t bytes) {
  return static_cast<int>((bytes + 3) / 4);
}

std::string masked(std::string_view key) {
  return "****" + std::string(key.substr(key.size() > 4 ? key.size() - 4 : 0));
}

std::string_view big_text() {
  static const std::string text = [] {
    constexpr std::string_view line = "The quick brown fox jumps over the lazy dog. ";
    std::string s;
    s.reserve(big_chunk_bytes + line.size());
    while (s.size() < big_chunk_bytes) {
      s += line;
    }
    s.resize(big_chunk_bytes);
    return s;
  }();
  return text;
}

// -- the reply's content, shared by every dialect ---------------------------------------------

struct reply_parts {
  std::vector<std::string> reasoning;
  std::vector<std::string> text;
  std::string tool_name;      // non-empty: the reply is one call to this tool
  bool no_arguments = false;  // the tool takes no parameters (user text has CALL_TOOL_NOARGS)
  int prompt_tokens = 1;
  int completion_tokens = 1;
  int reasoning_tokens = 0;

  bool is_tool() const { return !tool_name.empty(); }
};

/// The reply's text as `n` content pieces of about equal size, cut between UTF-8 characters;
/// padded with " more" words when it has fewer bytes than pieces (`chunks-<n>`).
std::vector<std::string> spread(const std::vector<std::string>& parts, std::size_t n) {
  std::string all;
  for (const auto& p : parts) {
    all += p;
  }
  while (all.size() < n) {
    all += " more";
  }
  std::vector<std::string> out;
  out.reserve(n);
  std::size_t start = 0;
  for (std::size_t i = 1; i <= n; ++i) {
    std::size_t end = std::max(start, all.size() * i / n);
    while (end < all.size() && (static_cast<unsigned char>(all[end]) & 0xC0) == 0x80) {
      ++end;
    }
    out.push_back(all.substr(start, end - start));
    start = end;
  }
  return out;
}

reply_parts make_parts(const reply_context& x) {
  reply_parts r;
  const auto& req = *x.req;
  const auto& b = *x.how;
  if (!req.first_tool.empty() && req.user_text.find("CALL_TOOL") != std::string::npos) {
    r.tool_name = req.first_tool;
    r.no_arguments = req.user_text.find("CALL_TOOL_NOARGS") != std::string::npos;
  }
  if (x.who == provider::deepseek && b.reasoner) {
    r.reasoning = {"The user said hello. ", "I should greet them back."};
  }
  if (!r.is_tool()) {
    r.text = {"Hello from mock ", std::string(name(x.who)) + "! ",
              "You said: " + std::string(utf8_prefix(req.user_text, echo_limit))};
    if (x.who == provider::sarvam) {
      r.text.emplace_back(hindi_first);
      r.text.emplace_back(hindi_second);
    } else if (b.split_utf8) {
      r.text.emplace_back(utf8_suffix);
    }
    if (b.content_chunks > 0) {
      r.text = spread(r.text, static_cast<std::size_t>(b.content_chunks));
    }
    if (b.big) {
      r.text.insert(r.text.begin() + 1, std::string(big_text()));
    }
  }
  std::size_t reasoning_bytes = 0;
  std::size_t out_bytes = r.is_tool() ? tool_arguments.size() : 0;
  for (const auto& s : r.reasoning) {
    reasoning_bytes += s.size();
  }
  for (const auto& s : r.text) {
    out_bytes += s.size();
  }
  r.prompt_tokens = req.prompt_tokens;
  r.reasoning_tokens = tokens_for(reasoning_bytes);
  r.completion_tokens = tokens_for(out_bytes) + r.reasoning_tokens;
  return r;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    out += p;
  }
  return out;
}

std::string reply_id(const reply_context& x) {
  return "mock-" + std::to_string(x.n);
}

std::string groq_request_id(const reply_context& x) {
  return "req_mock_" + std::to_string(x.n);
}

// -- OpenAI-compatible dialects ---------------------------------------------------------------

/// The provider's usage object for `r`.
std::string openai_usage(provider p, const reply_parts& r) {
  int prompt = r.prompt_tokens;
  int completion = r.completion_tokens;
  int total = prompt + completion;
  std::string u = "{\"prompt_tokens\":" + std::to_string(prompt) + ",\"completion_tokens\":"
                  + std::to_string(completion) + ",\"total_tokens\":" + std::to_string(total);
  switch (p) {
    case provider::groq:
      u += ",\"queue_time\":0.000113,\"prompt_time\":0.002031,\"completion_time\":0.0104,"
           "\"total_time\":0.012431";
      break;
    case provider::deepseek: {
      int hit = prompt / 2;
      u += ",\"prompt_tokens_details\":{\"cached_tokens\":" + std::to_string(hit)
           + "},\"completion_tokens_details\":{\"reasoning_tokens\":"
           + std::to_string(r.reasoning_tokens) + "},\"prompt_cache_hit_tokens\":"
           + std::to_string(hit) + ",\"prompt_cache_miss_tokens\":" + std::to_string(prompt - hit);
      break;
    }
    case provider::openai:
      u += ",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0}";
      break;
    default:
      break;
  }
  u += '}';
  return u;
}

std::string_view finish_reason(provider p, const reply_parts& r) {
  if (r.is_tool()) {
    return "tool_calls";
  }
  return p == provider::together ? "eos" : "stop";
}

std::string openai_body(const reply_context& x, const reply_parts& r) {
  const auto p = x.who;
  std::string o;
  o.reserve(512 + (x.how->big ? big_chunk_bytes : 0));
  o += "{\"id\":";
  append_json_string(o, reply_id(x));
  o += ",\"object\":\"chat.completion\",\"created\":";
  o += created;
  o += ",\"model\":";
  append_json_string(o, x.model);
  o += ",\"choices\":[";
  if (!x.how->empty_choices) {
    o += "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
    if (r.is_tool()) {
      o += "null";
    } else {
      append_json_string(o, joined(r.text));
    }
    if (!r.reasoning.empty()) {
      o += ",\"reasoning_content\":";
      append_json_string(o, joined(r.reasoning));
    }
    if (r.is_tool()) {
      o += ",\"tool_calls\":[{\"id\":\"";
      o += tool_call_id;
      o += "\",\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(o, r.tool_name);
      o += ",\"arguments\":";
      append_json_string(o, r.no_arguments ? std::string_view("{}") : tool_arguments);
      o += "}}]";
    }
    if (p == provider::openai) {
      o += ",\"refusal\":null,\"annotations\":[]";
    }
    o += "},\"logprobs\":null,\"finish_reason\":\"";
    o += finish_reason(p, r);
    o += "\"}";
  }
  o += "],\"usage\":";
  o += openai_usage(p, r);
  o += ",\"system_fingerprint\":\"fp_mock\"";
  if (p == provider::openai) {
    o += ",\"service_tier\":\"default\"";
  } else if (p == provider::groq) {
    o += ",\"x_groq\":{\"id\":\"" + groq_request_id(x) + "\"}";
  } else if (p == provider::together) {
    o += ",\"prompt\":[]";
  }
  o += '}';
  return o;
}

/// One `chat.completion.chunk`. `usage` empty: `null` with include_usage, else left out.
std::string openai_chunk(const reply_context& x, std::string_view choice, std::string_view usage,
                         std::string_view extra) {
  std::string o;
  o.reserve(256 + choice.size());
  o += "{\"id\":";
  append_json_string(o, reply_id(x));
  o += ",\"object\":\"chat.completion.chunk\",\"created\":";
  o += created;
  o += ",\"model\":";
  append_json_string(o, x.model);
  o += ",\"system_fingerprint\":\"fp_mock\",\"choices\":[";
  o += choice;
  o += ']';
  if (!usage.empty()) {
    o += ",\"usage\":";
    o += usage;
  } else if (x.req->include_usage) {
    o += ",\"usage\":null";
  }
  o += extra;
  o += '}';
  return o;
}

std::string choice_with(std::string_view delta, std::string_view finish) {
  std::string c = "{\"index\":0,\"delta\":";
  c += delta;
  c += ",\"logprobs\":null,\"finish_reason\":";
  c += finish;
  c += '}';
  return c;
}

std::vector<sse_event> openai_events(const reply_context& x, const reply_parts& r) {
  const auto p = x.who;
  std::vector<sse_event> ev;
  auto add = [&](std::string data, event_role role) {
    ev.push_back(sse_event{{}, std::move(data), role});
  };
  const std::string groq_id = ",\"x_groq\":{\"id\":\"" + groq_request_id(x) + "\"}";
  const std::string usage = openai_usage(p, r);
  const std::string groq_last =
      ",\"x_groq\":{\"id\":\"" + groq_request_id(x) + "\",\"usage\":" + usage + "}";
  const std::string_view first_extra = p == provider::groq ? std::string_view(groq_id) : "";

  if (x.how->empty_choices) {
    add(openai_chunk(x, "", "", first_extra), event_role::head);
  } else {
    add(openai_chunk(x,
                     choice_with(r.is_tool() ? R"({"role":"assistant","content":null})"
                                             : R"({"role":"assistant","content":""})",
                                 "null"),
                     "", first_extra),
        event_role::head);
    for (const auto& piece : r.reasoning) {
      std::string delta = "{\"content\":null,\"reasoning_content\":";
      append_json_string(delta, piece);
      delta += '}';
      add(openai_chunk(x, choice_with(delta, "null"), "", ""), event_role::content);
    }
    // Content deltas; Together puts usage on the last one even when nobody asked.
    std::vector<std::string> deltas;
    if (r.is_tool()) {
      std::string first = "{\"tool_calls\":[{\"index\":0,\"id\":\"";
      first += tool_call_id;
      first += "\",\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(first, r.tool_name);
      first += ",\"arguments\":\"\"}}]}";
      deltas.push_back(std::move(first));
      // A tool without parameters: OpenAI streams "{}" as its arguments; other OpenAI-compatible
      // servers (vLLM-based ones) send the empty first piece only.
      std::array<std::string_view, 1> empty_object{"{}"};
      std::span<const std::string_view> pieces = tool_argument_pieces;
      if (r.no_arguments) {
        pieces = p == provider::openai ? std::span<const std::string_view>(empty_object)
                                       : std::span<const std::string_view>();
      }
      for (auto piece : pieces) {
        if (piece.empty()) {
          continue;  // the first delta already carried the empty piece
        }
        std::string d = "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":";
        append_json_string(d, piece);
        d += "}}]}";
        deltas.push_back(std::move(d));
      }
    } else {
      for (const auto& piece : r.text) {
        std::string d = "{\"content\":";
        append_json_string(d, piece);
        if (!r.reasoning.empty()) {
          d += ",\"reasoning_content\":null";
        }
        d += '}';
        deltas.push_back(std::move(d));
      }
    }
    for (std::size_t i = 0; i < deltas.size(); ++i) {
      bool last = i + 1 == deltas.size();
      std::string_view u = last && p == provider::together ? std::string_view(usage) : "";
      add(openai_chunk(x, choice_with(deltas[i], "null"), u, ""), event_role::content);
    }
  }
  std::string finish = "\"";
  finish += x.how->empty_choices ? "stop" : finish_reason(p, r);
  finish += '"';
  const bool usage_chunk = x.req->include_usage;
  if (!x.how->empty_choices) {
    add(openai_chunk(x, choice_with("{}", finish), "",
                     p == provider::groq && !usage_chunk ? std::string_view(groq_last) : ""),
        event_role::tail);
  }
  if (usage_chunk) {
    add(openai_chunk(x, "", usage, p == provider::groq ? std::string_view(groq_last) : ""),
        event_role::tail);
  }
  add("[DONE]", event_role::terminal);
  return ev;
}

// -- Anthropic ---------------------------------------------------------------------------------

std::string anthropic_usage(const reply_parts& r, int output_tokens) {
  return "{\"input_tokens\":" + std::to_string(r.prompt_tokens)
         + ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":"
         + std::to_string(output_tokens) + "}";
}

std::string anthropic_id(const reply_context& x) {
  return "msg_mock_" + std::to_string(x.n);
}

std::string anthropic_body(const reply_context& x, const reply_parts& r) {
  std::string o;
  o.reserve(512 + (x.how->big ? big_chunk_bytes : 0));
  o += "{\"id\":\"" + anthropic_id(x) + "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  append_json_string(o, x.model);
  o += ",\"content\":[";
  if (!x.how->empty_choices) {
    if (r.is_tool()) {
      o += "{\"type\":\"tool_use\",\"id\":\"";
      o += tool_use_id;
      o += "\",\"name\":";
      append_json_string(o, r.tool_name);
      o += ",\"input\":";
      o += r.no_arguments ? std::string_view("{}") : tool_arguments;
      o += '}';
    } else {
      o += "{\"type\":\"text\",\"text\":";
      append_json_string(o, joined(r.text));
      o += '}';
    }
  }
  o += "],\"stop_reason\":\"";
  o += r.is_tool() ? "tool_use" : "end_turn";
  o += "\",\"stop_sequence\":null,\"usage\":";
  o += anthropic_usage(r, r.completion_tokens);
  o += '}';
  return o;
}

std::vector<sse_event> anthropic_events(const reply_context& x, const reply_parts& r) {
  std::vector<sse_event> ev;
  auto add = [&](std::string_view name, std::string data, event_role role) {
    ev.push_back(sse_event{std::string(name), std::move(data), role});
  };
  std::string start = "{\"type\":\"message_start\",\"message\":{\"id\":\"" + anthropic_id(x)
                      + "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  append_json_string(start, x.model);
  start += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":";
  start += anthropic_usage(r, 1);
  start += "}}";
  add("message_start", std::move(start), event_role::head);
  if (!x.how->empty_choices) {
    std::string block = R"({"type":"content_block_start","index":0,"content_block":)";
    if (r.is_tool()) {
      block += "{\"type\":\"tool_use\",\"id\":\"";
      block += tool_use_id;
      block += "\",\"name\":";
      append_json_string(block, r.tool_name);
      block += ",\"input\":{}}}";
    } else {
      block += R"({"type":"text","text":""}})";
    }
    add("content_block_start", std::move(block), event_role::head);
  }
  add("ping", R"({"type": "ping"})", event_role::head);
  if (!x.how->empty_choices) {
    if (r.is_tool()) {
      // A tool without parameters: content_block_start (input {}), then content_block_stop with
      // no input_json_delta between, as Anthropic streams it.
      std::span<const std::string_view> pieces = tool_argument_pieces;
      if (r.no_arguments) {
        pieces = {};
      }
      for (auto piece : pieces) {
        std::string d =
            R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":)";
        append_json_string(d, piece);
        d += "}}";
        add("content_block_delta", std::move(d), event_role::content);
      }
    } else {
      for (const auto& piece : r.text) {
        std::string d =
            R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":)";
        append_json_string(d, piece);
        d += "}}";
        add("content_block_delta", std::move(d), event_role::content);
      }
    }
    add("content_block_stop", R"({"type":"content_block_stop","index":0})", event_role::tail);
  }
  std::string delta = R"({"type":"message_delta","delta":{"stop_reason":")";
  delta += r.is_tool() ? "tool_use" : "end_turn";
  delta += R"(","stop_sequence":null},"usage":)";
  delta += anthropic_usage(r, r.completion_tokens);
  delta += '}';
  add("message_delta", std::move(delta), event_role::tail);
  add("message_stop", R"({"type":"message_stop"})", event_role::terminal);
  return ev;
}

// -- errors ------------------------------------------------------------------------------------

error_spec openai_error(int status, std::string_view model) {
  std::string m(model);
  switch (status) {
    case 400:
      return {status, "invalid_request_error", "", "Invalid request (mock_provider status 400)."};
    case 401:
      return {status, "invalid_request_error", "invalid_api_key",
              "Incorrect API key provided: sk-mock****. You can find your API key at "
              "https://platform.openai.com/account/api-keys."};
    case 403:
      return {status, "request_forbidden", "unsupported_country_region_territory",
              "Country, region, or territory not supported"};
    case 404:
      return {status, "invalid_request_error", "model_not_found",
              "The model `" + m + "` does not exist or you do not have access to it."};
    case 408:
      return {status, "timeout", "", "Request timed out."};
    case 409:
      return {status, "invalid_request_error", "conflict",
              "The request conflicts with another request; please retry."};
    case 413:
      return {status, "invalid_request_error", "request_too_large",
              "Request too large. Please reduce the size of your request."};
    case 422:
      return {status, "invalid_request_error", "", "Unprocessable entity."};
    case 429:
      return {status, "requests", "rate_limit_exceeded",
              "Rate limit reached for " + m
                  + " in organization org-mock on requests per min (RPM): Limit 500, Used 500, "
                    "Requested 1. Please try again in 120ms."};
    case 503:
      return {status, "server_error", "",
              "The engine is currently overloaded, please try again later."};
    default:
      break;
  }
  if (status >= 500) {
    return {status, "server_error", "",
            "The server had an error while processing your request. Sorry about that!"};
  }
  return {status, "invalid_request_error", "",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

error_spec anthropic_error(int status) {
  struct row {
    int status;
    std::string_view type;
    std::string_view message;
  };
  static constexpr row rows[] = {
      {400, "invalid_request_error", "mock_provider: simulated invalid request."},
      {401, "authentication_error", "invalid x-api-key"},
      {402, "billing_error", "Your credit balance is too low to access the Anthropic API."},
      {403, "permission_error", "Your API key does not have permission to use the resource."},
      {404, "not_found_error", "The requested resource could not be found."},
      {413, "request_too_large", "Request exceeds the maximum allowed number of bytes."},
      {429, "rate_limit_error", "Number of request tokens has exceeded your per-minute limit."},
      {500, "api_error", "Internal server error"},
      {504, "timeout_error", "Request timed out"},
      {529, "overloaded_error", "Overloaded"},
  };
  for (const auto& r : rows) {
    if (r.status == status) {
      return {status, std::string(r.type), "", std::string(r.message)};
    }
  }
  if (status >= 500) {
    return {status, "api_error", "", "Internal server error"};
  }
  return {status, "invalid_request_error", "",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

error_spec groq_error(int status, std::string_view model) {
  std::string m(model);
  switch (status) {
    case 401:
      return {status, "invalid_request_error", "invalid_api_key", "Invalid API Key"};
    case 404:
      return {status, "invalid_request_error", "model_not_found",
              "The model `" + m + "` does not exist or you do not have access to it."};
    case 413:
      return {status, "invalid_request_error", "request_too_large", "Request Entity Too Large"};
    case 429:
      return {status, "tokens", "rate_limit_exceeded",
              "Rate limit reached for model `" + m
                  + "` in organization `org_mock` service tier `on_demand` on tokens per minute "
                    "(TPM): Limit 6000, Used 5900, Requested 200. Please try again in 5.289s."};
    case 498:
      return {status, "capacity_exceeded", "capacity_exceeded",
              "The flex tier capacity for this model is exceeded. Please try again later."};
    case 499:
      return {status, "invalid_request_error", "request_cancelled", "Request cancelled"};
    case 503:
      return {status, "internal_server_error", "service_unavailable",
              "Service Unavailable: the model is over capacity."};
    default:
      break;
  }
  if (status >= 500) {
    return {status, "internal_server_error", "", "Internal Server Error"};
  }
  return {status, "invalid_request_error", "",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

error_spec deepseek_error(int status) {
  switch (status) {
    case 400:
      return {status, "invalid_request_error", "invalid_request_error", "Invalid Format"};
    case 401:
      return {status, "authentication_error", "invalid_request_error",
              "Authentication Fails, Your api key: ****mock is invalid"};
    case 402:
      return {status, "unknown_error", "invalid_request_error", "Insufficient Balance"};
    case 422:
      return {status, "invalid_request_error", "invalid_request_error", "Invalid Parameters"};
    case 429:
      return {status, "rate_limit_error", "rate_limit_reached", "Rate Limit Reached"};
    case 503:
      return {status, "server_overloaded", "server_overloaded", "Server Overloaded"};
    default:
      break;
  }
  if (status >= 500) {
    return {status, "api_error", "internal_error", "Server Error"};
  }
  return {status, "invalid_request_error", "invalid_request_error",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

error_spec together_error(int status, std::string_view model) {
  std::string m(model);
  switch (status) {
    case 401:
      return {status, "invalid_request_error", "invalid_api_key",
              "Invalid API key provided. You can find your API key at "
              "https://api.together.xyz/settings/api-keys."};
    case 404:
      return {status, "invalid_request_error", "model_not_found",
              "Unable to access model " + m + ". Please visit https://api.together.ai/models"};
    case 429:
      return {status, "rate_limit", "rate_limit_exceeded",
              "You are on tier Build Tier 1, which offers 600 queries and 180000 tokens per "
              "minute. Please try again later."};
    case 503:
      return {status, "server_error", "", "The server is overloaded or not ready yet."};
    default:
      break;
  }
  if (status >= 500) {
    return {status, "server_error", "",
            "Internal server error: mock_provider status " + std::to_string(status)};
  }
  return {status, "invalid_request_error", "",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

error_spec sarvam_error(int status) {
  switch (status) {
    case 401:
    case 403:
      return {status, "", "invalid_api_key_error", "Invalid API key or subscription key."};
    case 422:
      return {status, "", "unprocessable_entity_error", "Unprocessable entity."};
    case 429:
      return {status, "", "rate_limit_exceeded_error",
              "Rate limit exceeded. Please slow down your requests."};
    case 503:
      return {status, "", "rate_limit_exceeded_error",
              "Service is temporarily overloaded. Please retry."};
    default:
      break;
  }
  if (status >= 500) {
    return {status, "", "internal_server_error", "Internal server error."};
  }
  return {status, "", "invalid_request_error",
          "mock_provider: simulated status " + std::to_string(status) + "."};
}

void append_nullable(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "null";
  } else {
    append_json_string(out, s);
  }
}

std::string format_time(std::time_t t, const char* fmt) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, fmt, &tm);
  return std::string(buf, n);
}

}  // namespace

// -- providers ---------------------------------------------------------------------------------

std::string_view name(provider p) {
  switch (p) {
    case provider::openai:
      return "openai";
    case provider::anthropic:
      return "anthropic";
    case provider::groq:
      return "groq";
    case provider::deepseek:
      return "deepseek";
    case provider::together:
      return "together";
    case provider::sarvam:
      return "sarvam";
  }
  return "openai";
}

std::optional<provider> provider_named(std::string_view text) {
  for (auto p : all_providers) {
    if (name(p) == text) {
      return p;
    }
  }
  return std::nullopt;
}

// -- JSON text ---------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        switch (c) {
          case '\n':
            out += "\\n";
            break;
          case '\r':
            out += "\\r";
            break;
          case '\t':
            out += "\\t";
            break;
          default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: copy it only when it is well-formed UTF-8 (no overlongs or
    // surrogates), else write U+FFFD for its first byte and resynchronise.
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    bool ok = len != 0 && c <= 0xF4 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len >= 3) {
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0) && !(c == 0xF0 && c1 < 0x90)
           && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  out += '"';
}

// -- requests ----------------------------------------------------------------------------------

namespace {

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

bool id_pattern(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
  });
}

/// What Anthropic's Messages API refuses with 400 beyond missing fields (providers.md §2, issue
/// reports replayed against it), in its own words where they are known; empty when it accepts.
/// Checked: sampling ranges and temperature+top_p together (Claude 4.x), tool names, ids and
/// schemas, empty text, stop sequences, image media types, tool_use/tool_result pairing.
std::string anthropic_refusal(const rapidjson::Value& d) {
  const auto* temperature = member(d, "temperature");
  const auto* top_p = member(d, "top_p");
  if (temperature != nullptr && top_p != nullptr) {
    return "temperature and top_p cannot both be specified for this model. Please use only one.";
  }
  if (temperature != nullptr
      && (!temperature->IsNumber() || temperature->GetDouble() < 0
          || temperature->GetDouble() > 1)) {
    return "temperature: Input should be less than or equal to 1";
  }
  if (const auto* stops = member(d, "stop_sequences"); stops != nullptr && stops->IsArray()) {
    for (const auto& st : stops->GetArray()) {
      if (!st.IsString() || blank({st.GetString(), st.GetStringLength()})) {
        return "stop_sequences: each stop sequence must contain non-whitespace";
      }
    }
  }
  std::vector<std::string> tool_names;
  bool has_tools = false;
  if (const auto* tools = member(d, "tools"); tools != nullptr && tools->IsArray()) {
    has_tools = !tools->Empty();
    for (rapidjson::SizeType i = 0; i < tools->Size(); ++i) {
      const auto& t = (*tools)[i];
      auto at = "tools." + std::to_string(i) + ".custom.";
      auto tool_name = string_member(t, "name").value_or("");
      if (!id_pattern(tool_name, 128)) {
        return at + "name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'";
      }
      if (std::find(tool_names.begin(), tool_names.end(), tool_name) != tool_names.end()) {
        return "tools: Tool names must be unique.";
      }
      tool_names.emplace_back(tool_name);
      const auto* schema = member(t, "input_schema");
      if (schema == nullptr || !schema->IsObject()) {
        return at + "input_schema: Field required";
      }
      auto type = string_member(*schema, "type");
      if (!type) {
        return at + "input_schema.type: Field required";
      }
      if (*type != "object") {
        return at + "input_schema.type: Input should be 'object'";
      }
    }
  }
  const auto* messages = member(d, "messages");
  if (messages == nullptr || !messages->IsArray()) {
    return {};
  }
  std::vector<std::string> open_uses;  // tool_use ids of the previous assistant message
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const auto& m = (*messages)[i];
    auto at = "messages." + std::to_string(i);
    auto role = string_member(m, "role").value_or("");
    const auto* content = member(m, "content");
    std::vector<std::string> uses;
    std::vector<std::string> results;
    if (content != nullptr && content->IsString()) {
      if (content->GetStringLength() == 0) {
        return at + ": " + std::string(role) + " messages must have non-empty content";
      }
    } else if (content != nullptr && content->IsArray()) {
      for (rapidjson::SizeType j = 0; j < content->Size(); ++j) {
        const auto& b = (*content)[j];
        auto bat = at + ".content." + std::to_string(j);
        auto type = string_member(b, "type").value_or("");
        if (type == "text") {
          auto text = string_member(b, "text").value_or("");
          if (blank(text)) {
            return "messages: text content blocks must contain non-whitespace text";
          }
        } else if (type == "tool_use") {
          auto id = string_member(b, "id").value_or("");
          if (!id_pattern(id, 1024)) {
            return bat + ".tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'";
          }
          const auto* input = member(b, "input");
          if (input == nullptr || !input->IsObject()) {
            return bat + ".tool_use.input: Input should be a valid dictionary";
          }
          uses.emplace_back(id);
        } else if (type == "tool_result") {
          results.emplace_back(string_member(b, "tool_use_id").value_or(""));
        } else if (type == "image") {
          const auto* source = member(b, "source");
          auto kind = source != nullptr ? string_member(*source, "type") : std::nullopt;
          if (kind && *kind == "base64") {
            auto mt = string_member(*source, "media_type").value_or("");
            if (mt != "image/jpeg" && mt != "image/png" && mt != "image/gif"
                && mt != "image/webp") {
              return bat
                     + ".image.source.base64.media_type: Input should be 'image/jpeg', "
                       "'image/png', 'image/gif' or 'image/webp'";
            }
          }
        }
      }
    }
    if (!uses.empty() && !has_tools) {
      return "Requests which include `tool_use` or `tool_result` blocks must define tools.";
    }
    for (const auto& r : results) {
      auto it = std::find(open_uses.begin(), open_uses.end(), r);
      if (it == open_uses.end()) {
        return at
               + ": unexpected `tool_use_id` found in `tool_result` blocks: " + r
               + ". Each `tool_result` block must have a corresponding `tool_use` block in the "
                 "previous message.";
      }
      open_uses.erase(it);
    }
    if (!open_uses.empty()) {
      return "messages." + std::to_string(i - 1)
             + ": `tool_use` ids were found without `tool_result` blocks immediately after: "
             + open_uses.front();
    }
    open_uses = role == "assistant" ? uses : std::vector<std::string>{};
  }
  return {};
}

/// What the OpenAI-style providers refuse with 400 (checked 2026-11-30, providers.md §1, §3):
/// OpenAI's reasoning models take no `temperature`/`top_p` unless `reasoning_effort` is "none";
/// DeepSeek's thinking models need `reasoning_content` back on assistant turns with tool calls;
/// Groq refuses `reasoning_content` on assistant turns. Empty when the provider accepts.
std::string openai_style_refusal(provider p, const rapidjson::Value& d, std::string_view model) {
  if (p == provider::openai) {
    const bool reasoning = model.starts_with("gpt-6") || model.starts_with("gpt-5")
                           || model.starts_with("o1") || model.starts_with("o3")
                           || model.starts_with("o4");
    auto effort = string_member(d, "reasoning_effort");
    if (reasoning && !(effort && *effort == "none")) {
      for (const char* k : {"temperature", "top_p"}) {
        if (member(d, k) != nullptr) {
          return "Unsupported parameter: '" + std::string(k)
                 + "' is not supported with this model.";
        }
      }
    }
    return {};
  }
  const auto* messages = member(d, "messages");
  if (messages == nullptr || !messages->IsArray()) {
    return {};
  }
  const bool thinking = p == provider::deepseek
                        && (model.starts_with("deepseek-v4") || model == "deepseek-flash"
                            || model.find("reasoner") != std::string_view::npos);
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const auto& m = (*messages)[i];
    if (string_member(m, "role").value_or("") != "assistant") {
      continue;
    }
    const bool has_reasoning = member(m, "reasoning_content") != nullptr;
    if (p == provider::groq && has_reasoning) {
      return "'messages." + std::to_string(i)
             + "' : for 'role:assistant' the following must be satisfied[('messages."
             + std::to_string(i)
             + ".reasoning_content' : property 'reasoning_content' is unsupported)]";
    }
    const auto* calls = member(m, "tool_calls");
    if (thinking && calls != nullptr && calls->IsArray() && !calls->Empty() && !has_reasoning) {
      return "The reasoning_content in the thinking mode must be passed back to the API.";
    }
  }
  return {};
}

}  // namespace

chat_request parse_chat_request(provider p, std::string_view body) {
  chat_request r;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid = p == provider::anthropic
                    ? "There was an issue with your request body: it is not a JSON object."
                    : "We could not parse the JSON body of your request. (HINT: This likely means "
                      "you aren't using your HTTP library correctly.)";
    return r;
  }
  r.parsed = true;
  if (auto model = string_member(d, "model")) {
    r.model = std::string(*model);
  }
  if (auto* s = member(d, "stream"); s != nullptr && s->IsBool()) {
    r.stream = s->GetBool();
  }
  if (auto* so = member(d, "stream_options"); so != nullptr) {
    auto* iu = member(*so, "include_usage");
    r.include_usage = iu != nullptr && iu->IsBool() && iu->GetBool() && p != provider::anthropic;
  }
  if (auto* tools = member(d, "tools"); tools != nullptr && tools->IsArray() && !tools->Empty()) {
    const auto& first = (*tools)[0];
    auto tool_name =
        p == provider::anthropic
            ? string_member(first, "name")
            : string_member(
                member(first, "function") != nullptr ? *member(first, "function") : first, "name");
    r.first_tool = tool_name && !tool_name->empty() ? std::string(*tool_name) : "tool";
  }
  std::size_t text_bytes = 0;
  std::size_t message_count = 0;
  std::string bad_role;
  auto* messages = member(d, "messages");
  if (messages != nullptr && messages->IsArray()) {
    for (const auto& m : messages->GetArray()) {
      ++message_count;
      auto role = string_member(m, "role").value_or("");
      auto text = content_text(member(m, "content"));
      text_bytes += text.size();
      if (role == "user") {
        r.user_text = std::move(text);
      }
      if (p == provider::anthropic && role != "user" && role != "assistant" && bad_role.empty()) {
        bad_role = role.empty() ? std::string("(missing)") : std::string(role);
      }
    }
  }
  if (p == provider::anthropic) {
    text_bytes += content_text(member(d, "system")).size();
  }
  r.prompt_tokens = static_cast<int>(4 * message_count) + tokens_for(text_bytes);

  if (!r.model) {
    r.invalid =
        p == provider::anthropic ? "model: Field required" : "you must provide a model parameter";
  } else if (messages == nullptr || !messages->IsArray()) {
    r.invalid = p == provider::anthropic ? "messages: Field required"
                                         : "Missing required parameter: 'messages'.";
  } else if (message_count == 0) {
    r.invalid = p == provider::anthropic ? "messages: at least one message is required"
                                         : "Invalid 'messages': empty array. Expected an array "
                                           "with minimum length 1, but got an empty array instead.";
  } else if (p == provider::anthropic) {
    auto* max_tokens = member(d, "max_tokens");
    if (max_tokens == nullptr) {
      r.invalid = "max_tokens: Field required";
    } else if (!max_tokens->IsInt64() || max_tokens->GetInt64() < 1) {
      r.invalid = "max_tokens: Input should be a valid positive integer";
    } else if (!bad_role.empty()) {
      r.invalid = "messages: Unexpected role \"" + bad_role
                  + "\". The Messages API accepts a top-level `system` parameter, not \"system\" "
                    "as an input message role; allowed roles are \"user\" and \"assistant\".";
    } else {
      r.invalid = anthropic_refusal(d);
    }
    r.sampling = member(d, "temperature") != nullptr || member(d, "top_p") != nullptr
                 || member(d, "top_k") != nullptr;
  } else {
    r.invalid = openai_style_refusal(p, d, *r.model);
  }
  return r;
}

// -- errors ------------------------------------------------------------------------------------

error_spec default_error(provider p, int status, std::string_view model) {
  switch (p) {
    case provider::anthropic:
      return anthropic_error(status);
    case provider::groq:
      return groq_error(status, model);
    case provider::deepseek:
      return deepseek_error(status);
    case provider::together:
      return together_error(status, model);
    case provider::sarvam:
      return sarvam_error(status);
    case provider::openai:
      break;
  }
  return openai_error(status, model);
}

error_spec bad_request(provider p, std::string message) {
  if (p == provider::sarvam) {
    return {400, "", "invalid_request_error", std::move(message)};
  }
  return {400, "invalid_request_error", p == provider::deepseek ? "invalid_request_error" : "",
          std::move(message)};
}

error_spec auth_error(provider p, std::string_view why, std::string_view key) {
  const bool missing = why == "missing";
  switch (p) {
    case provider::anthropic:
      return {401, "authentication_error", "",
              missing ? "x-api-key header is required" : "invalid x-api-key"};
    case provider::groq:
      return {401, "invalid_request_error", "invalid_api_key", "Invalid API Key"};
    case provider::deepseek:
      return {401, "authentication_error", "invalid_request_error",
              missing ? std::string("Authentication Fails, no api key provided")
                      : "Authentication Fails, Your api key: " + masked(key) + " is invalid"};
    case provider::together:
      return together_error(401, "");
    case provider::sarvam:
      return {403, "", "invalid_api_key_error",
              missing ? "Missing api-subscription-key header."
                      : "Invalid API key or subscription key."};
    case provider::openai:
      break;
  }
  if (missing) {
    return {401, "invalid_request_error", "",
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."};
  }
  return {401, "invalid_request_error", "invalid_api_key",
          "Incorrect API key provided: " + masked(key)
              + ". You can find your API key at https://platform.openai.com/account/api-keys."};
}

error_spec quota_error(provider p) {
  switch (p) {
    case provider::anthropic:
      return anthropic_error(402);
    case provider::deepseek:
      return deepseek_error(402);
    case provider::sarvam:
      return {429, "", "insufficient_quota_error",
              "Insufficient quota: your credits are exhausted."};
    case provider::together:
      return {402, "credit_limit", "credit_limit",
              "Credit limit exceeded. Please add credits to your account."};
    case provider::groq:
    case provider::openai:
      break;
  }
  return {429, "insufficient_quota", "insufficient_quota",
          "You exceeded your current quota, please check your plan and billing details."};
}

body_text render_error(provider p, const error_spec& e, std::uint64_t n) {
  body_text out{"application/json", {}};
  auto& o = out.body;
  switch (p) {
    case provider::anthropic:
      o = "{\"type\":\"error\",\"error\":{\"type\":";
      append_json_string(o, e.type);
      o += ",\"message\":";
      append_json_string(o, e.message);
      o += "},\"request_id\":\"req_mock_" + std::to_string(n) + "\"}";
      return out;
    case provider::sarvam:
      o = "{\"error\":{\"message\":";
      append_json_string(o, e.message);
      o += ",\"code\":";
      append_json_string(o, e.code.empty() ? e.type : e.code);
      o += "}}";
      return out;
    case provider::groq:
      o = "{\"error\":{\"message\":";
      append_json_string(o, e.message);
      o += ",\"type\":";
      append_json_string(o, e.type);
      if (!e.code.empty()) {
        o += ",\"code\":";
        append_json_string(o, e.code);
      }
      o += "}}";
      return out;
    case provider::together:
      // Together's error bodies come in three shapes, and its 503 is not JSON at all.
      if (e.status == 503) {
        out.content_type = "text/plain; charset=utf-8";
        o = e.message;
        return out;
      }
      if (e.status == 500 || e.status == 502 || e.status == 504) {
        o = "{\"error\":";
        append_json_string(o, e.message);
        o += '}';
        return out;
      }
      if (e.status == 422) {
        o = "{\"message\":";
        append_json_string(o, e.message);
        o += ",\"type\":";
        append_json_string(o, e.type);
        o += '}';
        return out;
      }
      break;
    case provider::openai:
    case provider::deepseek:
      break;
  }
  o = "{\"error\":{\"message\":";
  append_json_string(o, e.message);
  o += ",\"type\":";
  append_json_string(o, e.type);
  o += ",\"param\":null,\"code\":";
  append_nullable(o, e.code);
  o += "}}";
  return out;
}

std::string html_error_page(int status, std::uint64_t n) {
  auto code = std::to_string(status);
  return "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<title>api.mock.invalid | " + code
         + ": Bad gateway</title>\n<meta charset=\"UTF-8\" />\n</head>\n<body>\n"
           "<div id=\"cf-error-details\">\n<h1>Error code "
         + code
         + "</h1>\n<p>The web server reported a bad gateway error.</p>\n"
           "<p>Cloudflare Ray ID: <strong>8f0mock"
         + std::to_string(n) + "</strong></p>\n</div>\n</body>\n</html>\n";
}

// -- happy path --------------------------------------------------------------------------------

std::string resolved_model(std::string_view requested) {
  if (requested.starts_with("mock-")) {
    return std::string(requested);
  }
  return std::string(requested) + "-2025-01-01";
}

std::string reply_body(const reply_context& x) {
  switch (x.req != nullptr ? x.req->api : api_kind::chat) {
    case api_kind::chat:
      break;
    case api_kind::responses:
      return responses_reply_body(x);
    case api_kind::count_tokens:
      return count_tokens_reply_body(x);
    case api_kind::embeddings:
    case api_kind::moderations:
    case api_kind::audio_transcriptions:
    case api_kind::audio_speech:
      return openai_extra_reply_body(x);
  }
  auto parts = make_parts(x);
  return x.who == provider::anthropic ? anthropic_body(x, parts) : openai_body(x, parts);
}

std::string reply_content_type(const reply_context& x) {
  if (x.req != nullptr && x.req->api != api_kind::chat && x.req->api != api_kind::responses
      && x.req->api != api_kind::count_tokens) {
    return openai_extra_content_type(x);
  }
  return "application/json";
}

chat_request parse_api_request(provider p, api_kind api, std::string_view content_type,
                               std::string_view body) {
  chat_request r;
  switch (api) {
    case api_kind::chat:
      r = parse_chat_request(p, body);
      break;
    case api_kind::responses:
      r = parse_responses_request(body);
      break;
    case api_kind::count_tokens:
      r = parse_count_tokens_request(body);
      break;
    case api_kind::embeddings:
    case api_kind::moderations:
    case api_kind::audio_transcriptions:
    case api_kind::audio_speech:
      r = parse_openai_extra_request(api, content_type, body);
      break;
  }
  r.api = api;
  return r;
}

std::vector<sse_event> reply_events(const reply_context& x) {
  if (x.req != nullptr && x.req->api == api_kind::responses) {
    return responses_reply_events(x);
  }
  auto parts = make_parts(x);
  return x.who == provider::anthropic ? anthropic_events(x, parts) : openai_events(x, parts);
}

sse_event inband_error_event(const reply_context& x) {
  if (x.req != nullptr && x.req->api == api_kind::responses) {
    return responses_inband_error_event(x);
  }
  switch (x.who) {
    case provider::anthropic:
      return {"error",
              R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
              event_role::tail};
    case provider::groq:
      return {{},
              openai_chunk(x, "", "",
                           ",\"x_groq\":{\"id\":\"" + groq_request_id(x)
                               + "\",\"error\":\"Service Unavailable: generation was interrupted "
                                 "on the server\"}"),
              event_role::tail};
    case provider::sarvam:
      return {
          {},
          R"({"error":{"message":"Internal server error during generation.","code":"internal_server_error"}})",
          event_role::tail};
    default:
      break;
  }
  return {
      {},
      R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
      event_role::tail};
}

sse_event malformed_event(const reply_context& x) {
  if (x.who == provider::anthropic) {
    return {
        "content_block_delta",
        R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated)",
        event_role::content};
  }
  return {
      {},
      "{\"id\":\"" + reply_id(x)
          + R"(","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"unterminated)",
      event_role::content};
}

std::string_view keepalive_bytes(provider p) {
  return p == provider::anthropic ? std::string_view("event: ping\ndata: {\"type\": \"ping\"}\n\n")
                                  : std::string_view(": keep-alive\n\n");
}

std::string frame_event(const sse_event& e, bool crlf, bool multiline_data) {
  const std::string_view nl = crlf ? "\r\n" : "\n";
  std::string out;
  out.reserve(e.name.size() + e.data.size() + 24);
  if (!e.name.empty()) {
    out += "event: ";
    out += e.name;
    out += nl;
  }
  std::string_view data = e.data;
  // Split a JSON object after its first `,` that precedes a key: joined with '\n' it is the
  // same JSON, since a newline between tokens is whitespace.
  auto split = multiline_data && data.starts_with('{') ? data.find(",\"") : std::string_view::npos;
  if (split != std::string_view::npos) {
    out += "data: ";
    out += data.substr(0, split + 1);
    out += nl;
    data.remove_prefix(split + 1);
  }
  out += "data: ";
  out += data;
  out += nl;
  out += nl;
  return out;
}

std::string models_body(provider p) {
  switch (p) {
    case provider::anthropic:
      return R"({"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},{"type":"model","id":"claude-3-5-haiku-20241022","display_name":"Claude Haiku 3.5","created_at":"2024-10-22T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-3-5-haiku-20241022"})";
    case provider::groq:
      return R"({"object":"list","data":[{"id":"llama-3.1-8b-instant","object":"model","created":1693721698,"owned_by":"Meta","active":true,"context_window":131072,"public_apps":null,"max_completion_tokens":131072},{"id":"llama-3.3-70b-versatile","object":"model","created":1733447754,"owned_by":"Meta","active":true,"context_window":131072,"public_apps":null,"max_completion_tokens":32768}]})";
    case provider::deepseek:
      return R"({"object":"list","data":[{"id":"deepseek-chat","object":"model","owned_by":"deepseek"},{"id":"deepseek-reasoner","object":"model","owned_by":"deepseek"}]})";
    case provider::together:
      return R"([{"id":"meta-llama/Llama-3.3-70B-Instruct-Turbo","object":"model","created":1733443200,"type":"chat","display_name":"Meta Llama 3.3 70B Instruct Turbo","organization":"Meta","context_length":131072,"pricing":{"input":0.88,"output":0.88}},{"id":"meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo","object":"model","created":1721692800,"type":"chat","display_name":"Meta Llama 3.1 8B Instruct Turbo","organization":"Meta","context_length":131072,"pricing":{"input":0.18,"output":0.18}}])";
    case provider::sarvam:
      return R"({"object":"list","data":[{"id":"sarvam-30b","object":"model","created":1750000000,"owned_by":"sarvamai"},{"id":"sarvam-105b","object":"model","created":1750000000,"owned_by":"sarvamai"}]})";
    case provider::openai:
      break;
  }
  return R"({"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},{"id":"gpt-4.1","object":"model","created":1744316542,"owned_by":"system"}]})";
}

// -- headers -----------------------------------------------------------------------------------

std::string http_date_in(int secs) {
  return format_time(std::time(nullptr) + secs, "%a, %d %b %Y %H:%M:%S GMT");
}

void append_provider_headers(std::string& o, provider p, std::uint64_t n, int status) {
  const bool limited = status == 429;
  const auto id = std::to_string(n);
  switch (p) {
    case provider::openai:
      o += "x-request-id: req_mock_" + id + "\r\n";
      o += "openai-organization: org-mock\r\nopenai-processing-ms: 1\r\n"
           "openai-version: 2020-10-01\r\n"
           "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-limit-tokens: 2000000\r\n";
      o += limited ? "x-ratelimit-remaining-requests: 0\r\nx-ratelimit-remaining-tokens: 0\r\n"
                   : "x-ratelimit-remaining-requests: 9999\r\n"
                     "x-ratelimit-remaining-tokens: 1999950\r\n";
      o += "x-ratelimit-reset-requests: 6ms\r\nx-ratelimit-reset-tokens: 1ms\r\n";
      break;
    case provider::groq:
      o += "x-request-id: req_mock_" + id + "\r\n";
      o += "x-ratelimit-limit-requests: 14400\r\nx-ratelimit-limit-tokens: 6000\r\n";
      o += limited ? "x-ratelimit-remaining-requests: 14399\r\nx-ratelimit-remaining-tokens: 0\r\n"
                   : "x-ratelimit-remaining-requests: 14399\r\n"
                     "x-ratelimit-remaining-tokens: 5950\r\n";
      o += "x-ratelimit-reset-requests: 6s\r\nx-ratelimit-reset-tokens: 7.66s\r\n";
      break;
    case provider::anthropic: {
      auto reset = format_time(std::time(nullptr) + 60, "%Y-%m-%dT%H:%M:%SZ");
      o += "request-id: req_mock_" + id + "\r\nanthropic-organization-id: mock-org\r\n";
      for (std::string_view what : {"requests", "tokens", "input-tokens", "output-tokens"}) {
        std::string prefix = "anthropic-ratelimit-" + std::string(what);
        o += prefix + "-limit: 4000\r\n";
        o += prefix + (limited ? "-remaining: 0\r\n" : "-remaining: 3999\r\n");
        o += prefix + "-reset: " + reset + "\r\n";
      }
      break;
    }
    case provider::deepseek:
      o += "x-ds-trace-id: mock" + id + "\r\n";
      break;
    case provider::together:
      o += "cf-ray: 8f0mock" + id + "-BOM\r\n";
      o += "x-ratelimit-limit: 10\r\nx-ratelimit-reset: 1\r\n";
      o += limited ? "x-ratelimit-remaining: 0\r\n" : "x-ratelimit-remaining: 9\r\n";
      o += "x-tokenlimit-limit: 3000\r\nx-tokenlimit-remaining: 2950\r\nx-total-time: 12.5\r\n";
      break;
    case provider::sarvam:
      break;
  }
}

}  // namespace ib::mock
