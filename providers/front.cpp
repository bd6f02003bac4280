#include "providers/front.hpp"

#include <utility>

#include "core/json.hpp"
#include "providers/anthropic_inbound.hpp"
#include "providers/responses.hpp"

namespace ib::providers {

std::string patch_model(std::string_view body, const std::vector<member_span>& members,
                        std::string_view upstream_model) {
  std::string out;
  out.reserve(body.size() + upstream_model.size() + 16);
  std::string scratch;
  const member_span* model = nullptr;
  for (const auto& m : members) {
    if (unescape_key(body.substr(m.key_begin, m.key_end - m.key_begin), scratch) == "model") {
      model = &m;  // the last one wins, as for every parsed member
    }
  }
  if (model == nullptr) {
    // No member to replace: `model` goes first, the object's own bytes after its `{`.
    auto open = body.find('{');
    out.append(body.substr(0, open + 1));
    out += R"("model":)";
    json_writer(out).string(upstream_model);
    auto rest = body.substr(open + 1);
    auto first = rest.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && rest[first] != '}') {
      out.push_back(',');
    }
    out.append(rest);
    return out;
  }
  out.append(body.substr(0, model->value_begin));
  json_writer(out).string(upstream_model);
  out.append(body.substr(model->value_end));
  return out;
}

std::string front_error_body(client_api api, const error& err,
                             const std::vector<attempt_record>* attempts) {
  switch (api) {
    case client_api::messages:
    case client_api::count_tokens:
      return anthropic_inbound::error_body(err, attempts);
    case client_api::chat_completions:
    case client_api::responses:
    case client_api::embeddings:
      break;
  }
  return attempts != nullptr ? to_envelope(err, *attempts) : to_envelope(err);
}

std::string front_error_from_envelope(client_api api, std::string body, int status) {
  switch (api) {
    case client_api::messages:
    case client_api::count_tokens:
      return anthropic_inbound::error_from_envelope(std::move(body), status);
    case client_api::chat_completions:
    case client_api::responses:
    case client_api::embeddings:
      break;
  }
  return body;
}

std::string front_stream_error_event(client_api api, const stream_failure& f) {
  switch (api) {
    case client_api::responses:
      return responses::stream_error_event(f);
    case client_api::messages:
    case client_api::count_tokens:
      return anthropic_inbound::stream_error_event(f);
    case client_api::chat_completions:
    case client_api::embeddings:
      break;
  }
  return stream_error_event(f);
}

}  // namespace ib::providers
