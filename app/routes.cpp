#include "app/routes.hpp"

namespace ib::app {

namespace {

using http::method;

constexpr auto id(endpoint e) noexcept {
  return static_cast<std::uint16_t>(e);
}

/// One row per (method, path pattern); the router derives 404, 405 and `Allow` from it.
constexpr http::route table[] = {
    {method::post, "/v1/users", id(endpoint::create_user)},
    {method::get, "/v1/keys", id(endpoint::list_keys)},
    {method::post, "/v1/keys", id(endpoint::create_key)},
    {method::delete_, "/v1/keys/{provider}", id(endpoint::delete_key)},
    {method::post, "/v1/chat/completions", id(endpoint::chat_completions)},
    {method::get, "/v1/models", id(endpoint::list_models)},
    {method::get, "/v1/requests", id(endpoint::list_requests)},
    {method::get, "/metrics", id(endpoint::metrics)},
    {method::get, "/healthz", id(endpoint::healthz)},
    {method::get, "/readyz", id(endpoint::readyz)},
    {method::post, "/v1/responses", id(endpoint::responses)},
    {method::post, "/v1/messages", id(endpoint::messages)},
    {method::post, "/v1/messages/count_tokens", id(endpoint::count_tokens)},
    {method::post, "/v1/embeddings", id(endpoint::embeddings)},
    // Pass-through to OpenAI (no fallback): the README's endpoint table lists them.
    {method::post, "/v1/moderations", id(endpoint::openai_passthrough)},
    {method::post, "/v1/audio/transcriptions", id(endpoint::openai_passthrough)},
    {method::post, "/v1/audio/translations", id(endpoint::openai_passthrough)},
    {method::post, "/v1/audio/speech", id(endpoint::openai_passthrough)},
    {method::post, "/v1/images/generations", id(endpoint::openai_passthrough)},
    {method::post, "/v1/images/edits", id(endpoint::openai_passthrough)},
    {method::post, "/v1/images/variations", id(endpoint::openai_passthrough)},
    {method::get, "/v1/files", id(endpoint::openai_passthrough)},
    {method::post, "/v1/files", id(endpoint::openai_passthrough)},
    {method::get, "/v1/files/{id}", id(endpoint::openai_passthrough)},
    {method::delete_, "/v1/files/{id}", id(endpoint::openai_passthrough)},
    {method::get, "/v1/files/{id}/content", id(endpoint::openai_passthrough)},
    {method::get, "/v1/batches", id(endpoint::openai_passthrough)},
    {method::post, "/v1/batches", id(endpoint::openai_passthrough)},
    {method::get, "/v1/batches/{id}", id(endpoint::openai_passthrough)},
    {method::post, "/v1/batches/{id}/cancel", id(endpoint::openai_passthrough)},
    {method::post, "/v1/uploads", id(endpoint::openai_passthrough)},
    {method::post, "/v1/uploads/{id}/parts", id(endpoint::openai_passthrough)},
    {method::post, "/v1/uploads/{id}/complete", id(endpoint::openai_passthrough)},
    {method::post, "/v1/uploads/{id}/cancel", id(endpoint::openai_passthrough)},
    {method::get, "/v1/responses/{id}", id(endpoint::openai_passthrough)},
    {method::delete_, "/v1/responses/{id}", id(endpoint::openai_passthrough)},
    {method::post, "/v1/responses/{id}/cancel", id(endpoint::openai_passthrough)},
    {method::get, "/v1/responses/{id}/input_items", id(endpoint::openai_passthrough)},
};

}  // namespace

std::span<const http::route> route_table() noexcept {
  return table;
}

const http::router& routes() {
  static const http::router r{route_table()};
  return r;
}

}  // namespace ib::app
