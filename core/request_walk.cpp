#include "core/request_walk.hpp"

#include <algorithm>
#include <utility>

namespace ib {

request_walk::request_walk(std::size_t plan_size, steady_time deadline, bool stream)
    : plan_size_(plan_size), deadline_(deadline), stream_(stream) {
  attempts_.reserve(plan_size + 1);
}

void request_walk::probe_refused(std::string_view provider, steady_time retry_at) {
  ++summary_.skipped_open;  // already counted as keyed by `advance`
  summary_.soonest_open =
      summary_.soonest_open ? std::min(*summary_.soonest_open, retry_at) : retry_at;
  attempts_.push_back(attempt_record{std::string(provider), 0, "circuit_open", 0});
}

std::uint32_t request_walk::start(std::string_view provider) {
  current_.assign(provider);
  in_flight_ = true;
  return ++attempt_;
}

end_action request_walk::end(std::uint32_t attempt, const attempt_end& r) {
  if (!in_flight_ || attempt != attempt_) {
    return end_action::ignore;
  }
  in_flight_ = false;
  if (r.result == outcome::unsupported) {
    ++summary_.unsupported;
    unsupported_message_ = current_ + ": " + std::string(r.unsupported);
    unsupported_param_.assign(r.param);
    attempts_.push_back(attempt_record{current_, 0, "unsupported", 0});
    return end_action::fall_back;
  }
  ++summary_.attempted;
  attempts_.push_back(attempt_of(current_, r.upstream_status, r.result, r.latency_ms));
  if (r.result == outcome::rate_limited || r.result == outcome::key_rejected) {
    summary_.failed(r.result, r.cooldown_until, r.long_cooldown);
    if (!r.message.empty()) {
      if (!upstream_messages_.empty()) {
        upstream_messages_ += "; ";
      }
      upstream_messages_ += current_;
      upstream_messages_ += ": ";
      upstream_messages_ += r.message;
    }
  } else if (falls_back(r.result)) {
    summary_.failed(r.result);
  }
  if (stream_ && committed_) {
    // After the commit point nothing can fall back (design §4).
    return r.result == outcome::success ? end_action::end_stream : end_action::end_with_error;
  }
  switch (r.result) {
    case outcome::success:
      if (stream_) {
        committed_ = true;
        return end_action::commit_and_end;
      }
      return end_action::answer;
    case outcome::cancelled:
      return end_action::drop;
    case outcome::deadline:
      summary_.deadline = true;
      return end_action::answer_final;
    default:
      return falls_back(r.result) ? end_action::fall_back : end_action::pass_through;
  }
}

request_walk::piece_action request_walk::piece(std::uint32_t attempt, bool content) {
  if (!in_flight_ || attempt != attempt_) {
    return piece_action::ignore;
  }
  if (committed_) {
    return piece_action::write;
  }
  if (content) {
    committed_ = true;
    return piece_action::commit;
  }
  return piece_action::hold;
}

void request_walk::cancel(std::int64_t latency_ms) {
  if (in_flight_) {
    attempts_.push_back(attempt_record{current_, 0, "cancelled", latency_ms});
    in_flight_ = false;
  }
}

std::string request_walk::attempts_header_serving() const {
  std::string h = attempts_header(attempts_);
  if (!h.empty()) {
    h.push_back(';');
  }
  h += current_;
  h += "=200";
  return h;
}

final_error request_walk::final_answer(std::string_view route_name,
                                       const std::vector<std::string>& plan_providers,
                                       steady_time now) const {
  const auto answer = decide_exhausted(summary_, now);
  const std::string route(route_name);
  const std::string& code = answer.detail_code;
  std::string message;
  std::string param;
  switch (answer.code) {
    case errc::no_provider_key:
      if (code == "provider_key_rejected") {
        message = "Every provider of " + route
                  + " you have a key for rejected it (401/402/403): replace it with POST "
                    "/v1/keys.";
      } else {
        // Each provider once, in plan order (compared whole: "groq" is not part of "groq2").
        std::string names;
        for (std::size_t i = 0; i < plan_providers.size(); ++i) {
          const auto& p = plan_providers[i];
          if (std::find(plan_providers.begin(),
                        plan_providers.begin() + static_cast<std::ptrdiff_t>(i), p)
              == plan_providers.begin() + static_cast<std::ptrdiff_t>(i)) {
            names += names.empty() ? "" : ", ";
            names += p;
          }
        }
        message = "You have no provider key for any provider of " + route
                  + ". Register one with POST /v1/keys for one of: " + names + ".";
        param = "model";
      }
      break;
    case errc::rate_limited:
      message = code == "insufficient_quota"
                    ? "Every provider of " + route
                          + " you have a key for refused for lack of quota or credit (429); "
                            "retrying will not help until you add some."
                    : "Every provider of " + route
                          + " you have a key for is rate limited (429); retry after the time "
                            "given in Retry-After.";
      break;
    case errc::unavailable:
      message = "Every provider of " + route
                + " you have a key for is unavailable (circuit open); retry after the time given "
                  "in Retry-After.";
      break;
    case errc::invalid_request:
      message = unsupported_message_;
      param = unsupported_param_;
      break;
    case errc::gateway_timeout:
      message = code == "deadline"
                    ? std::string("the request deadline expired")
                    : "Every provider of " + route + " timed out: " + attempts_header(attempts_);
      break;
    default:
      message = "All providers failed for " + route + ": " + attempts_header(attempts_);
      break;
  }
  if ((answer.code == errc::rate_limited || code == "provider_key_rejected")
      && !upstream_messages_.empty()) {
    message += " Upstream: ";
    message += upstream_messages_;
  }
  return final_error{error{answer.code, std::move(message), std::move(param), code},
                     answer.no_retry, answer.retry_after_s};
}

}  // namespace ib
