#include "providers/error_map.hpp"

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "providers/json.hpp"

namespace ib::providers {

namespace {

bool is_utf8_continuation(char c) noexcept {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// `text` cut to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view cut_utf8(std::string_view text, std::size_t max) noexcept {
  if (text.size() <= max) {
    return text;
  }
  std::size_t n = max;
  while (n > 0 && is_utf8_continuation(text[n])) {
    --n;
  }
  return text.substr(0, n);
}

/// A string member as text, or a number member as its decimal text.
std::string scalar_text(const rapidjson::Value& obj, std::string_view key) {
  const rapidjson::Value* v = json::member(obj, key);
  if (v == nullptr) {
    return {};
  }
  if (v->IsString()) {
    return std::string(json::view(*v));
  }
  if (v->IsInt64()) {
    return std::to_string(v->GetInt64());
  }
  if (v->IsUint64()) {
    return std::to_string(v->GetUint64());
  }
  return {};
}

std::string message_text(const rapidjson::Value& obj, std::string_view key) {
  auto s = json::get_string(obj, key);
  return s ? std::string(cut_utf8(*s, max_error_message_bytes)) : std::string();
}

bool looks_like_html(std::string_view content_type) noexcept {
  return content_type.find("html") != std::string_view::npos;
}

std::string status_message(std::string_view provider, int status) {
  std::string out;
  out.reserve(provider.size() + 24);
  out += provider.empty() ? std::string_view("the provider") : provider;
  out += " returned HTTP ";
  out += std::to_string(status);
  return out;
}

}  // namespace

std::optional<error_fields> read_error_fields(const rapidjson::Value& v) {
  if (!v.IsObject()) {
    return std::nullopt;
  }
  error_fields f;
  const rapidjson::Value* err = json::member(v, "error");
  if (err != nullptr && err->IsObject()) {
    f.message = message_text(*err, "message");
    f.type = scalar_text(*err, "type");
    f.param = scalar_text(*err, "param");
    f.code = scalar_text(*err, "code");
  } else if (err != nullptr && err->IsString()) {
    f.message = std::string(cut_utf8(json::view(*err), max_error_message_bytes));
    f.type = scalar_text(v, "type");
    f.code = scalar_text(v, "code");
  } else if (json::member(v, "message") != nullptr) {
    f.message = message_text(v, "message");
    f.type = scalar_text(v, "type");
    f.param = scalar_text(v, "param");
    f.code = scalar_text(v, "code");
  } else if (json::member(v, "detail") != nullptr) {
    f.message = message_text(v, "detail");
  } else {
    return std::nullopt;
  }
  if (f.type == "error") {
    f.type.clear();  // `{"type":"error","message":...}`: the word says nothing
  }
  if (f.type.empty()) {
    f.type = f.code;  // Sarvam sends a `code` and no `type`
  }
  if (f.message.empty() && f.type.empty() && f.code.empty()) {
    return std::nullopt;
  }
  return f;
}

std::optional<error_fields> parse_error_body(std::string_view body) {
  if (body.empty()) {
    return std::nullopt;
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(body.data(), body.size());
  if (doc.HasParseError()) {
    return std::nullopt;
  }
  return read_error_fields(doc);
}

std::string_view default_error_type(int status) noexcept {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    default:
      break;
  }
  if (status >= 400 && status < 500) {
    return "invalid_request_error";
  }
  return "upstream_error";
}

mapped_error map_openai_style_error(const dialect& d, std::string_view provider, int status,
                                    std::string_view content_type, std::string_view body) {
  mapped_error out;
  out.status = (status >= 400 && status < 600) ? status : 502;
  std::optional<error_fields> f;
  if (!looks_like_html(content_type)) {
    f = parse_error_body(body);
  }
  if (!f) {
    out.result = classify(d, status, {}, {});
    out.envelope = envelope(status_message(provider, status), "upstream_error");
    return out;
  }
  out.result = classify(d, status, f->type, f->code);
  out.long_cooldown = is_long_cooldown(d, status, f->type, f->code);
  if (f->message.empty()) {
    f->message = status_message(provider, status);
  }
  if (f->type.empty()) {
    f->type = default_error_type(status);
  }
  out.envelope = envelope(f->message, f->type, f->param, f->code);
  return out;
}

mapped_error map_error(std::string_view provider, int status, std::string_view content_type,
                       std::string_view body) {
  // The generic dialect has no status rules: classify_status alone decides.
  return map_openai_style_error(find_dialect("generic"), provider, status, content_type, body);
}

mapped_error invalid_response() {
  mapped_error out;
  out.result = outcome::bad_response;
  out.status = 502;
  out.envelope = envelope("upstream returned an invalid response", "upstream_error");
  return out;
}

decoded_response to_decoded(mapped_error e) {
  decoded_response out;
  out.result = e.result;
  out.status = e.status;
  out.body = std::move(e.envelope);
  out.long_cooldown = e.long_cooldown;
  return out;
}

stream_failure to_stream_failure(mapped_error e) {
  stream_failure out;
  out.result = e.result;
  out.status = e.status;
  out.envelope = std::move(e.envelope);
  return out;
}

// Declared in adapter.hpp; defined here so that it links without either protocol's code.
std::string stream_error_event(const stream_failure& f) {
  std::string out;
  out.reserve(f.envelope.size() + 8);
  out += "data: ";
  out += f.envelope;
  out += "\n\n";
  return out;
}

}  // namespace ib::providers
