#include "core/error.hpp"

#include "core/json.hpp"

namespace ib {

int http_status(errc code) noexcept {
  switch (code) {
    case errc::none:
      return 200;
    case errc::invalid_request:
      return 400;
    case errc::unauthorized:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::method_not_allowed:
      return 405;
    case errc::conflict:
      return 409;
    case errc::payload_too_large:
      return 413;
    case errc::unprocessable:
      return 422;
    case errc::no_provider_key:
      return 424;
    case errc::rate_limited:
      return 429;
    case errc::internal:
    case errc::storage:
    case errc::crypto:
      return 500;
    case errc::bad_gateway:
      return 502;
    case errc::unavailable:
      return 503;
    case errc::gateway_timeout:
      return 504;
    case errc::insufficient_storage:
      return 507;
  }
  return 500;
}

std::string_view error_type(errc code) noexcept {
  switch (code) {
    case errc::none:
      return "none";
    case errc::invalid_request:
    case errc::not_found:
    case errc::method_not_allowed:
    case errc::conflict:
    case errc::payload_too_large:
    case errc::unprocessable:
    case errc::no_provider_key:
      return "invalid_request_error";
    case errc::unauthorized:
      return "authentication_error";
    case errc::forbidden:
      return "permission_error";
    case errc::rate_limited:
      return "rate_limit_error";
    case errc::internal:
    case errc::storage:
    case errc::crypto:
    case errc::insufficient_storage:
      return "server_error";
    case errc::bad_gateway:
    case errc::unavailable:
    case errc::gateway_timeout:
      return "upstream_error";
  }
  return "server_error";
}

namespace {

/// The members of the envelope's `error` object, left open for a caller's own members.
void write_envelope_members(json_writer& w, std::string_view message, std::string_view type,
                            std::string_view param, std::string_view code) {
  w.key("message").string(message);
  w.key("type").string(type);
  w.key("param").string_or_null(param);
  w.key("code").string_or_null(code);
}

}  // namespace

std::string envelope(std::string_view message, std::string_view type, std::string_view param,
                     std::string_view code) {
  std::string out;
  out.reserve(80 + message.size() + type.size() + param.size() + code.size());
  json_writer w(out);
  w.start_object().key("error").start_object();
  write_envelope_members(w, message, type, param, code);
  w.end_object().end_object();
  return out;
}

std::string to_envelope(const error& err) {
  return envelope(err.message, error_type(err.code), err.param, err.detail_code);
}

void write_error_members(json_writer& w, const error& err) {
  write_envelope_members(w, err.message, error_type(err.code), err.param, err.detail_code);
}

}  // namespace ib
