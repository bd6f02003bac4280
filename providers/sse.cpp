#include "providers/sse.hpp"

#include "core/json.hpp"

namespace ib::providers {

void start_chunk_event(json_writer& w, std::string_view id, std::int64_t created,
                       std::string_view model) {
  w.out() += "data: ";
  w.start_object();
  w.key("id").string(id);
  w.key("object").string("chat.completion.chunk");
  w.key("created").integer(created);
  w.key("model").string(model);
}

bool sse_parser::push(char ch) {
  if (last_was_cr_) {
    last_was_cr_ = false;
    if (ch == '\n') {
      return true;  // the LF of a CRLF pair: the line already ended at the CR
    }
  }
  if (ch == '\r') {
    last_was_cr_ = true;
    return end_line();
  }
  if (ch == '\n') {
    return end_line();
  }
  line_.push_back(ch);
  return line_.size() + current_.data.size() <= max_;
}

bool sse_parser::end_line() {
  if (line_.empty()) {
    // A blank line dispatches the event, if it carried data.
    if (has_data_) {
      ready_ = true;
    } else {
      current_.event.clear();
    }
    return true;
  }
  std::string_view line = line_;
  if (line.front() == ':') {
    ++comments_;
    line_.clear();
    return true;
  }
  auto colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
  }
  if (field == "data") {
    if (has_data_) {
      current_.data.push_back('\n');
    }
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  }
  // `id`, `retry` and unknown fields are ignored.
  line_.clear();
  return current_.data.size() <= max_;
}

void append_sse_data(std::string& out, std::string_view payload) {
  out.reserve(out.size() + payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
}

}  // namespace ib::providers
