// The mock's OpenAI embeddings, moderations and audio (`/openai/v1/embeddings` — also served by
// the other OpenAI-style providers —, `/moderations`, `/audio/transcriptions`, `/audio/speech`).
// Each validates what the real endpoint requires and answers in its shape, predictably:
//
// - embeddings: `input` a string, an array of strings, an array of tokens (integers) or an
//   array of such arrays; one vector of 8 floats per input, each float k/256 (k from -128 to
//   127, so exact in float32 and in JSON) taken from an FNV-1a hash of the input's text (tokens
//   as their decimal text joined by ","); `encoding_format` "float" (default) or "base64" (the
//   float32 little-endian bytes, base64, as OpenAI sends them); usage counts one token per 4
//   bytes of text (at least one) or one per token.
// - moderations: `input` a string, an array of strings or an array of text/image_url parts;
//   one result per string (one for a parts array), never flagged; `model` defaults to
//   `omni-moderation-latest`.
// - audio transcriptions: multipart/form-data with a `model` field and a `file` part; answers
//   {"text":"mock transcript of N bytes"} (N: the file part's size), or that text alone for
//   `response_format` "text"; a body whose closing boundary is missing is refused.
// - audio speech: JSON `model`, `input`, `voice`; answers 4,170 bytes shaped as MP3 frames
//   (`audio/mpeg`; the content type follows `response_format`).
//
// References (checked 2026-11-30): platform.openai.com/docs/api-reference/embeddings/create,
// /moderations/create, /audio/createTranscription, /audio/createSpeech.
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "bench/mock/wire.hpp"

namespace ib::mock {

namespace {

// How a parsed request travels to the reply (`chat_request` is the mock's one request type):
// `user_text` holds the inputs (embeddings, moderations: joined by the unit separator) or the
// transcript; `first_tool` holds the requested format (`encoding_format`, `response_format`).
constexpr char input_separator = '\x1f';

constexpr std::size_t embedding_size = 8;

const rapidjson::Value* member_of(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) {
    return nullptr;
  }
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string_view text_of(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// The vector of one input: 8 values k/256, k from the input's hash.
std::array<float, embedding_size> vector_of(std::string_view input) {
  std::array<float, embedding_size> v{};
  const auto h = fnv1a(input);
  for (std::size_t i = 0; i < embedding_size; ++i) {
    const int k = static_cast<int>((h >> (8 * i)) & 0xff) - 128;
    v[i] = static_cast<float>(k) / 256.0f;
  }
  return v;
}

std::string base64(const unsigned char* data, std::size_t n) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    const std::uint32_t b0 = data[i];
    const std::uint32_t b1 = i + 1 < n ? data[i + 1] : 0;
    const std::uint32_t b2 = i + 2 < n ? data[i + 2] : 0;
    const std::uint32_t triple = (b0 << 16) | (b1 << 8) | b2;
    out.push_back(table[(triple >> 18) & 63]);
    out.push_back(table[(triple >> 12) & 63]);
    out.push_back(i + 1 < n ? table[(triple >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? table[triple & 63] : '=');
  }
  return out;
}

/// The float32 little-endian bytes of `v`, base64 (OpenAI's `encoding_format: "base64"`).
std::string base64_floats(const std::array<float, embedding_size>& v) {
  std::array<unsigned char, embedding_size * 4> bytes{};
  for (std::size_t i = 0; i < embedding_size; ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v[i], sizeof bits);
    for (std::size_t b = 0; b < 4; ++b) {
      bytes[i * 4 + b] = static_cast<unsigned char>((bits >> (8 * b)) & 0xff);
    }
  }
  return base64(bytes.data(), bytes.size());
}

/// The inputs of a request joined by `input_separator`; `tokens` counts them as usage.
struct inputs {
  std::string joined;
  std::size_t count = 0;
  int tokens = 0;
  std::string invalid;
};

void add_input(inputs& in, std::string_view text, int tokens) {
  if (in.count > 0) {
    in.joined.push_back(input_separator);
  }
  in.joined.append(text);
  ++in.count;
  in.tokens += tokens;
}

int text_tokens(std::string_view text) {
  return static_cast<int>(text.size() / 4) + 1;
}

/// A token array (`[1, 2, 3]`) as its text `1,2,3`; false if it holds anything but integers.
bool token_text(const rapidjson::Value& arr, std::string& out) {
  out.clear();
  for (const auto& t : arr.GetArray()) {
    if (!t.IsInt64() || t.GetInt64() < 0) {
      return false;
    }
    if (!out.empty()) {
      out.push_back(',');
    }
    out += std::to_string(t.GetInt64());
  }
  return !arr.Empty();
}

inputs embedding_inputs(const rapidjson::Value* input) {
  inputs in;
  if (input == nullptr) {
    in.invalid = "you must provide an input parameter";
    return in;
  }
  if (input->IsString()) {
    if (input->GetStringLength() == 0) {
      in.invalid = "'$.input' is invalid: an input must not be an empty string.";
      return in;
    }
    add_input(in, text_of(*input), text_tokens(text_of(*input)));
    return in;
  }
  if (!input->IsArray() || input->Empty()) {
    in.invalid =
        "'$.input' is invalid: expected a string, an array of strings, an array of "
        "tokens or an array of token arrays.";
    return in;
  }
  std::string tokens;
  if ((*input)[0].IsNumber()) {
    if (!token_text(*input, tokens)) {
      in.invalid = "'$.input' is invalid: a token array must hold non-negative integers.";
      return in;
    }
    add_input(in, tokens, static_cast<int>(input->Size()));
    return in;
  }
  for (const auto& item : input->GetArray()) {
    if (item.IsString() && item.GetStringLength() > 0) {
      add_input(in, text_of(item), text_tokens(text_of(item)));
    } else if (item.IsArray() && token_text(item, tokens)) {
      add_input(in, tokens, static_cast<int>(item.Size()));
    } else {
      in.invalid = "'$.input' is invalid: every item must be a non-empty string or a token array.";
      return in;
    }
  }
  return in;
}

chat_request parse_embeddings(std::string_view body) {
  chat_request r;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid = "We could not parse the JSON body of your request.";
    return r;
  }
  r.parsed = true;
  auto* model = member_of(d, "model");
  if (model == nullptr || !model->IsString() || model->GetStringLength() == 0) {
    r.invalid = "you must provide a model parameter";
    return r;
  }
  r.model = std::string(text_of(*model));
  auto in = embedding_inputs(member_of(d, "input"));
  if (!in.invalid.empty()) {
    r.invalid = std::move(in.invalid);
    return r;
  }
  r.first_tool = "float";
  if (auto* fmt = member_of(d, "encoding_format"); fmt != nullptr) {
    if (!fmt->IsString()
        || (text_of(*fmt) != std::string_view("float") && text_of(*fmt) != "base64")) {
      r.invalid = "'encoding_format' must be one of 'float' or 'base64'.";
      return r;
    }
    r.first_tool = std::string(text_of(*fmt));
  }
  r.user_text = std::move(in.joined);
  r.prompt_tokens = in.tokens;
  return r;
}

chat_request parse_moderations(std::string_view body) {
  chat_request r;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid = "We could not parse the JSON body of your request.";
    return r;
  }
  r.parsed = true;
  r.model = "omni-moderation-latest";
  if (auto* model = member_of(d, "model"); model != nullptr) {
    if (!model->IsString() || model->GetStringLength() == 0) {
      r.invalid = "'model' must be a non-empty string.";
      return r;
    }
    r.model = std::string(text_of(*model));
  }
  auto* input = member_of(d, "input");
  inputs in;
  if (input != nullptr && input->IsString()) {
    add_input(in, text_of(*input), text_tokens(text_of(*input)));
  } else if (input != nullptr && input->IsArray() && !input->Empty()) {
    if (input->GetArray()[0].IsObject()) {
      // Multimodal parts: one result for the whole array.
      std::string text;
      for (const auto& part : input->GetArray()) {
        auto* type = member_of(part, "type");
        if (type == nullptr || !type->IsString()
            || (text_of(*type) != std::string_view("text") && text_of(*type) != "image_url")) {
          r.invalid = "'$.input' is invalid: each part must be of type 'text' or 'image_url'.";
          return r;
        }
        if (auto* t = member_of(part, "text"); t != nullptr && t->IsString()) {
          text.append(text_of(*t));
        }
      }
      add_input(in, text, text_tokens(text));
    } else {
      for (const auto& item : input->GetArray()) {
        if (!item.IsString()) {
          r.invalid = "'$.input' is invalid: expected strings.";
          return r;
        }
        add_input(in, text_of(item), text_tokens(text_of(item)));
      }
    }
  } else {
    r.invalid =
        "'$.input' is invalid: expected a string, an array of strings or an array of "
        "parts.";
    return r;
  }
  r.user_text = std::move(in.joined);
  r.prompt_tokens = static_cast<int>(in.count);  // the result count
  return r;
}

// -- multipart/form-data (RFC 7578) ------------------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) {
      return false;
    }
  }
  return true;
}

/// The value of parameter `name` in a header value (`multipart/form-data; boundary=x`,
/// `form-data; name="file"; filename="a.wav"`), unquoted; empty if absent.
std::string_view param_of(std::string_view value, std::string_view name) {
  while (!value.empty()) {
    auto semi = value.find(';');
    if (semi == std::string_view::npos) {
      return {};
    }
    value.remove_prefix(semi + 1);
    auto item = trim(value.substr(0, value.find(';')));
    auto eq = item.find('=');
    if (eq != std::string_view::npos && iequals(trim(item.substr(0, eq)), name)) {
      auto v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"') {
        auto close = v.find('"', 1);
        return close == std::string_view::npos ? std::string_view{} : v.substr(1, close - 1);
      }
      return v;
    }
  }
  return {};
}

struct form_part {
  std::string_view name;
  std::string_view filename;
  std::string_view content;
};

/// The parts of a multipart body; empty with `invalid` set when its framing is broken.
std::vector<form_part> form_parts(std::string_view body, std::string_view boundary,
                                  std::string& invalid) {
  std::vector<form_part> parts;
  const std::string delimiter = "--" + std::string(boundary);
  auto pos = body.find(delimiter);
  if (pos == std::string_view::npos) {
    invalid = "multipart body: no boundary delimiter";
    return {};
  }
  pos += delimiter.size();
  const std::string next = "\r\n" + delimiter;
  for (;;) {
    if (body.substr(pos, 2) == "--") {
      return parts;  // the close delimiter
    }
    if (body.substr(pos, 2) != "\r\n") {
      invalid = "multipart body: malformed delimiter line";
      return {};
    }
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) {
      invalid = "multipart body: a part has no header end";
      return {};
    }
    form_part part;
    auto headers = body.substr(pos, head_end - pos);
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      auto colon = line.find(':');
      if (colon != std::string_view::npos
          && iequals(trim(line.substr(0, colon)), "content-disposition")) {
        auto value = line.substr(colon + 1);
        part.name = param_of(value, "name");
        part.filename = param_of(value, "filename");
      }
    }
    auto content_start = head_end + 4;
    auto end = body.find(next, content_start);
    if (end == std::string_view::npos) {
      invalid = "multipart body: the closing boundary is missing";
      return {};
    }
    part.content = body.substr(content_start, end - content_start);
    parts.push_back(part);
    pos = end + next.size();
  }
}

chat_request parse_transcription(std::string_view content_type, std::string_view body) {
  chat_request r;
  auto semi = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semi)), "multipart/form-data")) {
    r.invalid = "Content-Type must be multipart/form-data.";
    return r;
  }
  auto boundary = param_of(content_type, "boundary");
  if (boundary.empty()) {
    r.invalid = "multipart/form-data without a boundary.";
    return r;
  }
  auto parts = form_parts(body, boundary, r.invalid);
  if (!r.invalid.empty()) {
    return r;
  }
  r.parsed = true;
  const form_part* file = nullptr;
  r.first_tool = "json";
  for (const auto& p : parts) {
    if (p.name == "model" && !p.content.empty()) {
      r.model = std::string(p.content);
    } else if (p.name == "file") {
      file = &p;
    } else if (p.name == "response_format") {
      r.first_tool = std::string(p.content);
    }
  }
  if (!r.model) {
    r.invalid = "you must provide a model parameter";
    return r;
  }
  if (file == nullptr) {
    r.invalid = "you must provide a file parameter";
    return r;
  }
  if (r.first_tool != "json" && r.first_tool != "text" && r.first_tool != "verbose_json") {
    r.invalid = "response_format: expected json, text or verbose_json";
    return r;
  }
  r.user_text = "mock transcript of " + std::to_string(file->content.size()) + " bytes";
  return r;
}

chat_request parse_speech(std::string_view body) {
  chat_request r;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    r.invalid = "We could not parse the JSON body of your request.";
    return r;
  }
  r.parsed = true;
  auto* model = member_of(d, "model");
  auto* input = member_of(d, "input");
  auto* voice = member_of(d, "voice");
  if (model == nullptr || !model->IsString() || model->GetStringLength() == 0) {
    r.invalid = "you must provide a model parameter";
    return r;
  }
  r.model = std::string(text_of(*model));
  if (input == nullptr || !input->IsString() || input->GetStringLength() == 0) {
    r.invalid = "'input' must be a non-empty string.";
    return r;
  }
  if (voice == nullptr || (!voice->IsString() && !voice->IsObject())) {
    r.invalid = "'voice' is required.";
    return r;
  }
  r.user_text = std::string(text_of(*input));
  r.first_tool = "mp3";
  if (auto* fmt = member_of(d, "response_format"); fmt != nullptr && fmt->IsString()) {
    r.first_tool = std::string(text_of(*fmt));
  }
  return r;
}

std::string embeddings_body(const reply_context& x) {
  const auto& req = *x.req;
  const bool b64 = req.first_tool == "base64";
  std::string out = "{\"object\":\"list\",\"data\":[";
  std::string_view rest = req.user_text;
  std::size_t index = 0;
  for (;;) {
    auto sep = rest.find(input_separator);
    auto input = rest.substr(0, sep);
    const auto v = vector_of(input);
    if (index > 0) {
      out.push_back(',');
    }
    out += "{\"object\":\"embedding\",\"index\":" + std::to_string(index) + ",\"embedding\":";
    if (b64) {
      out += "\"" + base64_floats(v) + "\"";
    } else {
      out.push_back('[');
      for (std::size_t i = 0; i < v.size(); ++i) {
        char num[32];
        std::snprintf(num, sizeof num, "%.9g", static_cast<double>(v[i]));
        if (i > 0) {
          out.push_back(',');
        }
        out += num;
      }
      out.push_back(']');
    }
    out.push_back('}');
    ++index;
    if (sep == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(sep + 1);
  }
  out += "],\"model\":";
  append_json_string(out, x.model);
  const auto tokens = std::to_string(req.prompt_tokens);
  out += ",\"usage\":{\"prompt_tokens\":" + tokens + ",\"total_tokens\":" + tokens + "}}";
  return out;
}

std::string moderations_body(const reply_context& x) {
  static constexpr std::string_view categories[] = {"harassment",
                                                    "harassment/threatening",
                                                    "hate",
                                                    "hate/threatening",
                                                    "illicit",
                                                    "illicit/violent",
                                                    "self-harm",
                                                    "self-harm/intent",
                                                    "self-harm/instructions",
                                                    "sexual",
                                                    "sexual/minors",
                                                    "violence",
                                                    "violence/graphic"};
  std::string result = "{\"flagged\":false,\"categories\":{";
  for (std::size_t i = 0; i < std::size(categories); ++i) {
    result += (i > 0 ? ",\"" : "\"") + std::string(categories[i]) + "\":false";
  }
  result += "},\"category_scores\":{";
  for (std::size_t i = 0; i < std::size(categories); ++i) {
    result += (i > 0 ? ",\"" : "\"") + std::string(categories[i]) + "\":0.0001";
  }
  result += "},\"category_applied_input_types\":{";
  for (std::size_t i = 0; i < std::size(categories); ++i) {
    result += (i > 0 ? ",\"" : "\"") + std::string(categories[i]) + "\":[\"text\"]";
  }
  result += "}}";
  std::string out = "{\"id\":\"modr-mock-" + std::to_string(x.n) + "\",\"model\":";
  append_json_string(out, x.model);
  out += ",\"results\":[";
  for (int i = 0; i < x.req->prompt_tokens; ++i) {
    out += (i > 0 ? "," : "") + result;
  }
  out += "]}";
  return out;
}

std::string transcription_body(const reply_context& x) {
  if (x.req->first_tool == "text") {
    return x.req->user_text + "\n";
  }
  std::string out = "{\"text\":";
  append_json_string(out, x.req->user_text);
  if (x.req->first_tool == "verbose_json") {
    out += ",\"task\":\"transcribe\",\"language\":\"english\",\"duration\":1.0,\"segments\":[]";
  }
  out += ",\"usage\":{\"type\":\"duration\",\"seconds\":1}}";
  return out;
}

/// 10 frames of 417 bytes, each starting with an MPEG-1 Layer III frame header (128 kbit/s,
/// 44.1 kHz), the rest a fixed pattern: 4,170 bytes.
std::string speech_body() {
  std::string out;
  constexpr std::size_t frames = 10;
  constexpr std::size_t frame_bytes = 417;
  out.reserve(frames * frame_bytes);
  for (std::size_t f = 0; f < frames; ++f) {
    out += "\xFF\xFB\x90\x64";
    for (std::size_t i = 4; i < frame_bytes; ++i) {
      out.push_back(static_cast<char>((i * 31 + f * 7) & 0xff));
    }
  }
  return out;
}

}  // namespace

chat_request parse_openai_extra_request(api_kind api, std::string_view content_type,
                                        std::string_view body) {
  switch (api) {
    case api_kind::embeddings:
      return parse_embeddings(body);
    case api_kind::moderations:
      return parse_moderations(body);
    case api_kind::audio_transcriptions:
      return parse_transcription(content_type, body);
    case api_kind::audio_speech:
      return parse_speech(body);
    default:
      break;
  }
  chat_request r;
  r.invalid = "mock_provider: not an OpenAI extra API";
  return r;
}

std::string openai_extra_reply_body(const reply_context& x) {
  switch (x.req->api) {
    case api_kind::embeddings:
      return embeddings_body(x);
    case api_kind::moderations:
      return moderations_body(x);
    case api_kind::audio_transcriptions:
      return transcription_body(x);
    case api_kind::audio_speech:
      return speech_body();
    default:
      break;
  }
  return "{}";
}

std::string openai_extra_content_type(const reply_context& x) {
  if (x.req->api == api_kind::audio_transcriptions && x.req->first_tool == "text") {
    return "text/plain; charset=utf-8";
  }
  if (x.req->api == api_kind::audio_speech) {
    const auto& f = x.req->first_tool;
    if (f == "opus") {
      return "audio/ogg";
    }
    if (f == "aac") {
      return "audio/aac";
    }
    if (f == "flac") {
      return "audio/flac";
    }
    if (f == "wav") {
      return "audio/wav";
    }
    if (f == "pcm") {
      return "audio/pcm";
    }
    return "audio/mpeg";
  }
  return "application/json";
}

}  // namespace ib::mock
