// Anthropic Messages event stream -> OpenAI `chat.completion.chunk` SSE (providers.md §2.3).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/outcome.hpp"
#include "providers/anthropic.hpp"
#include "providers/anthropic_detail.hpp"
#include "providers/error_map.hpp"
#include "providers/json.hpp"
#include "providers/sse.hpp"

namespace ib::providers::anthropic {

namespace {

using rapidjson::Value;

class translator final : public stream_translator {
 public:
  translator(bool include_usage, std::string_view upstream_model, std::int64_t created)
      : include_usage_(include_usage), model_(upstream_model), created_(created) {}

  void feed(std::string_view bytes, stream_output& out) override;
  void finish(stream_output& out) override;

 private:
  bool stopped() const noexcept { return done_ || failed_; }
  void on_event(const sse_event& ev, stream_output& out);
  void on_message_start(const Value& data, stream_output& out);
  void on_block_start(const Value& data, stream_output& out);
  void on_block_delta(const Value& data, stream_output& out);
  void on_block_stop(const Value& data, stream_output& out);
  /// Gives a tool call that got no arguments the ones its block started with, or `{}`.
  void close_tool_block(std::size_t i, stream_output& out);
  void on_message_delta(const Value& data, stream_output& out);
  void on_message_stop(stream_output& out);
  void on_error(const Value& data, stream_output& out);
  void fail(stream_output& out, outcome o, int status, std::string envelope);
  void fail_bad(stream_output& out, std::string_view why);
  /// Appends one chunk whose `delta` object holds what `write_delta(json_writer&)` writes, with
  /// `finish_reason` `finish` (empty: null), straight into `out.client_bytes`.
  template <class WriteDelta>
  void emit(stream_output& out, WriteDelta&& write_delta, std::string_view finish = {});
  /// Starts a chunk in `w`: `data: {"id":…,"object":…,"created":…,"model":…` (object open).
  void start_chunk(json_writer& w) const;
  /// Ends the chunk that `start_chunk` opened.
  static void end_chunk(json_writer& w);
  /// Emits the delta `{"tool_calls":[{"index":call,"function":{"arguments":arguments}}]}`.
  void emit_arguments(stream_output& out, int call, std::string_view arguments);
  /// Copies the translator's sticky state into `out`.
  void sync(stream_output& out) const;

  bool include_usage_;
  std::string model_;
  std::int64_t created_;
  sse_parser parser_;
  std::string id_;  ///< the message id, once message_start came
  bool started_ = false;
  bool finished_ = false;  ///< a finish_reason was sent
  bool content_ = false;
  bool done_ = false;
  bool failed_ = false;
  bool have_usage_ = false;
  detail::token_tally tally_;
  int tool_count_ = 0;
  /// A surfaced `tool_use` block. A tool without parameters streams `content_block_start` with
  /// `input: {}` and then `content_block_stop` with no `input_json_delta` between: its arguments
  /// must still assemble to valid JSON (`"{}"`, as OpenAI sends and as the non-streamed path
  /// gives), so they are sent when the block closes (or the message ends) without any.
  struct tool_block {
    std::int64_t index = -1;  ///< Anthropic's content block index
    int call = 0;             ///< the OpenAI tool call index
    bool has_arguments = false;
    bool closed = false;
    std::string start_input;  ///< `input` of content_block_start when not `{}` (JSON)
  };
  std::vector<tool_block> tool_blocks_;
};

void translator::feed(std::string_view bytes, stream_output& out) {
  if (!stopped()) {
    bool ok = parser_.feed(bytes, [&](const sse_event& ev) {
      if (!stopped()) {
        on_event(ev, out);
      }
    });
    if (!ok && !stopped()) {
      fail_bad(out, "stream event too large");
    }
  }
  sync(out);
}

void translator::finish(stream_output& out) {
  if (!stopped()) {
    fail(out, outcome::bad_response, 502,
         envelope("upstream stream ended before completion", "upstream_error"));
  }
  sync(out);
}

void translator::sync(stream_output& out) const {
  out.content = out.content || content_;
  out.done = done_;
  if (started_) {
    out.model = model_;
  }
  if (have_usage_) {
    out.tokens = tally_.to_usage();
  }
}

void translator::fail(stream_output& out, outcome o, int status, std::string envelope) {
  failed_ = true;
  out.failure = stream_failure{o, status, std::move(envelope)};
}

void translator::fail_bad(stream_output& out, std::string_view why) {
  fail(out, outcome::bad_response, 502,
       envelope("anthropic stream: " + std::string(why), "upstream_error"));
}

void translator::start_chunk(json_writer& w) const {
  start_chunk_event(w, id_, created_, model_);
}

void translator::end_chunk(json_writer& w) {
  w.end_object();
  w.out() += "\n\n";
}

template <class WriteDelta>
void translator::emit(stream_output& out, WriteDelta&& write_delta, std::string_view finish) {
  json_writer w(out.client_bytes);
  start_chunk(w);
  w.key("choices").start_array().start_object();
  w.key("index").integer(0);
  w.key("delta").start_object();
  write_delta(w);
  w.end_object();
  w.key("logprobs").null();
  w.key("finish_reason").string_or_null(finish);
  w.end_object().end_array();
  if (include_usage_) {
    w.key("usage").null();
  }
  end_chunk(w);
}

/// Writes nothing into a delta: `{}`.
constexpr auto no_delta = [](json_writer&) {};

void translator::emit_arguments(stream_output& out, int call, std::string_view arguments) {
  emit(out, [&](json_writer& w) {
    w.key("tool_calls").start_array().start_object();
    w.key("index").integer(call);
    w.key("function").start_object().key("arguments").string(arguments).end_object();
    w.end_object().end_array();
  });
}

void translator::on_event(const sse_event& ev, stream_output& out) {
  if (ev.event == "ping") {
    return;  // keep-alive: neither payload nor output
  }
  rapidjson::Document doc;
  doc.Parse<json::parse_flags>(ev.data.data(), ev.data.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    out.payload = true;
    fail_bad(out, "unparseable event data");
    return;
  }
  std::string_view type = json::get_string(doc, "type").value_or(ev.event);
  if (type == "ping") {
    return;
  }
  out.payload = true;
  if (ev.event == "error" || type == "error") {
    on_error(doc, out);
    return;
  }
  if (type == "message_start") {
    on_message_start(doc, out);
    return;
  }
  if (!started_) {
    if (type == "content_block_start" || type == "content_block_delta"
        || type == "content_block_stop" || type == "message_delta" || type == "message_stop") {
      fail_bad(out, "event before message_start");
    }
    return;  // unknown events are ignored (forward compatible)
  }
  if (type == "content_block_start") {
    on_block_start(doc, out);
  } else if (type == "content_block_delta") {
    on_block_delta(doc, out);
  } else if (type == "message_delta") {
    on_message_delta(doc, out);
  } else if (type == "message_stop") {
    on_message_stop(out);
  } else if (type == "content_block_stop") {
    on_block_stop(doc, out);
  }
  // Unknown events: nothing.
}

void translator::on_message_start(const Value& data, stream_output& out) {
  if (started_) {
    return;
  }
  auto* message = json::get_object(data, "message");
  auto id = message != nullptr ? json::get_string(*message, "id") : std::nullopt;
  if (!id) {
    fail_bad(out, "message_start without a message id");
    return;
  }
  if (auto model = json::get_string(*message, "model"); model && !model->empty()) {
    model_ = std::string(*model);
  }
  if (auto* usage = json::get_object(*message, "usage")) {
    tally_.read(*usage);
    have_usage_ = true;
  }
  started_ = true;
  id_.assign(*id);
  emit(out, [](json_writer& w) {
    w.key("role").string("assistant");
    w.key("content").string("");
  });
}

void translator::on_block_start(const Value& data, stream_output& out) {
  auto* block = json::get_object(data, "content_block");
  auto type = block != nullptr ? json::get_string(*block, "type") : std::nullopt;
  if (!type) {
    fail_bad(out, "content_block_start without a block type");
    return;
  }
  if (*type == "text") {
    // Anthropic opens text blocks empty; text here is kept should it ever not be.
    if (auto text = json::get_string(*block, "text"); text && !text->empty()) {
      emit(out, [&](json_writer& w) { w.key("content").string(*text); });
      content_ = true;
    }
    return;
  }
  if (*type != "tool_use") {
    return;  // thinking, server tools, future block types
  }
  auto id = json::get_string(*block, "id");
  auto name = json::get_string(*block, "name");
  if (!id || id->empty() || !name || name->empty()) {
    fail_bad(out, "tool_use block without id or name");
    return;
  }
  int k = tool_count_++;
  tool_block tb;
  tb.index = json::get_int(data, "index").value_or(-1);
  tb.call = k;
  if (auto* input = json::get_object(*block, "input"); input != nullptr && !input->ObjectEmpty()) {
    json_writer(tb.start_input).value(*input);
  }
  tool_blocks_.push_back(std::move(tb));
  emit(out, [&](json_writer& w) {
    w.key("tool_calls").start_array().start_object();
    w.key("index").integer(k);
    w.key("id").string(*id);
    w.key("type").string("function");
    w.key("function").start_object();
    w.key("name").string(*name);
    w.key("arguments").string("");
    w.end_object();
    w.end_object().end_array();
  });
  content_ = true;
}

void translator::on_block_delta(const Value& data, stream_output& out) {
  auto* delta = json::get_object(data, "delta");
  auto type = delta != nullptr ? json::get_string(*delta, "type") : std::nullopt;
  if (!type) {
    fail_bad(out, "content_block_delta without a delta type");
    return;
  }
  if (*type == "text_delta") {
    auto text = json::get_string(*delta, "text");
    if (!text) {
      fail_bad(out, "text_delta without text");
      return;
    }
    if (text->empty()) {
      return;
    }
    emit(out, [&](json_writer& w) { w.key("content").string(*text); });
    content_ = true;
  } else if (*type == "input_json_delta") {
    auto partial = json::get_string(*delta, "partial_json");
    if (!partial) {
      fail_bad(out, "input_json_delta without partial_json");
      return;
    }
    auto index = json::get_int(data, "index").value_or(-1);
    tool_block* tb = nullptr;
    for (auto& b : tool_blocks_) {
      if (b.index == index && !b.closed) {
        tb = &b;
      }
    }
    if (tb == nullptr || partial->empty()) {
      return;  // input of a block we did not surface (e.g. a server tool), or nothing
    }
    tb->has_arguments = true;
    emit_arguments(out, tb->call, *partial);
  } else if (*type == "thinking_delta") {
    auto thinking = json::get_string(*delta, "thinking");
    if (thinking && !thinking->empty()) {
      emit(out, [&](json_writer& w) { w.key("reasoning_content").string(*thinking); });
    }
  }
  // signature_delta, citations_delta and future deltas: nothing.
}

void translator::on_block_stop(const Value& data, stream_output& out) {
  auto index = json::get_int(data, "index").value_or(-1);
  for (std::size_t i = 0; i < tool_blocks_.size(); ++i) {
    if (tool_blocks_[i].index == index && !tool_blocks_[i].closed) {
      close_tool_block(i, out);
    }
  }
}

void translator::close_tool_block(std::size_t i, stream_output& out) {
  auto& tb = tool_blocks_[i];
  tb.closed = true;
  if (tb.has_arguments) {
    return;
  }
  tb.has_arguments = true;
  emit_arguments(
      out, tb.call,
      tb.start_input.empty() ? std::string_view("{}") : std::string_view(tb.start_input));
}

void translator::on_message_delta(const Value& data, stream_output& out) {
  // A block left open (no content_block_stop) still gets its arguments before the finish.
  for (std::size_t i = 0; i < tool_blocks_.size(); ++i) {
    if (!tool_blocks_[i].closed) {
      close_tool_block(i, out);
    }
  }
  if (auto* usage = json::get_object(data, "usage")) {
    tally_.read(*usage);  // cumulative: the latest values win
    have_usage_ = true;
  }
  auto* delta = json::get_object(data, "delta");
  auto stop = delta != nullptr ? json::get_string(*delta, "stop_reason") : std::nullopt;
  if (stop && !finished_) {
    emit(out, no_delta, detail::finish_reason(*stop));
    finished_ = true;
    content_ = true;
  }
}

void translator::on_message_stop(stream_output& out) {
  for (std::size_t i = 0; i < tool_blocks_.size(); ++i) {
    if (!tool_blocks_[i].closed) {
      close_tool_block(i, out);
    }
  }
  if (!finished_) {
    // openai-node's stream helper throws if a choice never gets a finish_reason.
    emit(out, no_delta, "stop");
    finished_ = true;
    content_ = true;
  }
  if (include_usage_) {
    json_writer w(out.client_bytes);
    start_chunk(w);
    w.key("choices").start_array().end_array();
    w.key("usage");
    tally_.write_json(w);
    end_chunk(w);
  }
  append_sse_data(out.client_bytes, "[DONE]");
  done_ = true;
}

void translator::on_error(const Value& data, stream_output& out) {
  auto fields = read_error_fields(data);
  std::string message =
      fields && !fields->message.empty() ? std::move(fields->message) : "anthropic stream error";
  std::string type = fields && !fields->type.empty() ? std::move(fields->type) : "upstream_error";
  const auto c = detail::classify_stream_error(type);
  fail(out, c.result, c.status, envelope(message, type));
}

}  // namespace

std::unique_ptr<stream_translator> make_translator(const chat_request& req,
                                                   std::string_view upstream_model) {
  return make_translator(req, upstream_model, detail::now_unix());
}

std::unique_ptr<stream_translator> make_translator(const chat_request& req,
                                                   std::string_view upstream_model,
                                                   std::int64_t created) {
  return std::make_unique<translator>(req.include_usage, upstream_model, created);
}

}  // namespace ib::providers::anthropic
