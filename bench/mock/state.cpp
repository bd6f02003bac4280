#include "bench/mock/state.hpp"

namespace ib::mock {

namespace {

std::size_t record_size(const request_record& r) {
  std::size_t n = sizeof(request_record) + r.method.size() + r.target.size() + r.body.size();
  for (const auto& [k, v] : r.headers) {
    n += k.size() + v.size() + 32;
  }
  return n;
}

}  // namespace

mock_state::mock_state(std::size_t record_limit, std::size_t record_bytes)
    : record_limit_(record_limit), record_bytes_limit_(record_bytes) {}

void mock_state::count_request(provider p) {
  ++requests_[static_cast<std::size_t>(p)];
}

void mock_state::connection_opened() {
  ++accepted_;
  ++open_;
}

void mock_state::connection_closed() {
  ++closed_;
  --open_;
}

void mock_state::record(request_record r) {
  if (record_limit_ == 0) {
    return;
  }
  const auto size = record_size(r);
  std::lock_guard lock(records_mutex_);
  records_.emplace_back(++record_seq_, std::move(r));
  record_bytes_ += size;
  // Keep the newest record even when it alone is over the byte budget.
  while (records_.size() > record_limit_
         || (records_.size() > 1 && record_bytes_ > record_bytes_limit_)) {
    record_bytes_ -= record_size(records_.front().second);
    records_.pop_front();
  }
}

std::size_t mock_state::push_steps(provider p, std::vector<behaviour> steps) {
  std::lock_guard lock(scripts_mutex_);
  auto& q = scripts_[static_cast<std::size_t>(p)];
  queued_steps_ += steps.size();
  for (auto& s : steps) {
    q.push_back(std::move(s));
  }
  return q.size();
}

std::optional<behaviour> mock_state::pop_step(provider p) {
  if (queued_steps_.load(std::memory_order_relaxed) == 0) {
    return std::nullopt;
  }
  std::lock_guard lock(scripts_mutex_);
  auto& q = scripts_[static_cast<std::size_t>(p)];
  if (q.empty()) {
    return std::nullopt;
  }
  auto step = std::move(q.front());
  q.pop_front();
  --queued_steps_;
  return step;
}

void mock_state::set_chaos(provider p, chaos_spec spec) {
  std::lock_guard lock(chaos_mutex_);
  auto& slot = chaos_[static_cast<std::size_t>(p)];
  const bool was_on = slot.spec.rate > 0;
  if (spec.rate <= 0 || spec.faults.empty()) {
    spec = chaos_spec{};
  }
  const bool is_on = spec.rate > 0;
  slot.rng.seed(spec.seed);
  slot.calls = 0;
  slot.faults = 0;
  slot.by_fault.assign(spec.faults.size(), 0);
  slot.spec = std::move(spec);
  chaos_on_ += static_cast<int>(is_on) - static_cast<int>(was_on);
}

std::optional<behaviour> mock_state::draw_fault(provider p) {
  if (chaos_on_.load(std::memory_order_relaxed) == 0) {
    return std::nullopt;
  }
  std::lock_guard lock(chaos_mutex_);
  auto& slot = chaos_[static_cast<std::size_t>(p)];
  if (slot.spec.rate <= 0) {
    return std::nullopt;
  }
  ++slot.calls;
  if (!std::bernoulli_distribution(slot.spec.rate)(slot.rng)) {
    return std::nullopt;
  }
  std::uniform_int_distribution<std::size_t> pick(0, slot.spec.faults.size() - 1);
  const auto i = pick(slot.rng);
  ++slot.faults;
  ++slot.by_fault[i];
  return slot.spec.faults[i];
}

void mock_state::reset() {
  {
    std::lock_guard lock(scripts_mutex_);
    for (auto& q : scripts_) {
      q.clear();
    }
    queued_steps_ = 0;
  }
  {
    std::lock_guard lock(records_mutex_);
    records_.clear();
    record_bytes_ = 0;
    record_seq_ = 0;
  }
  for (auto p : all_providers) {
    set_chaos(p, chaos_spec{});
  }
  for (auto& r : requests_) {
    r = 0;
  }
  replies_ = 0;
  accepted_ = 0;
  closed_ = 0;
  idle_closed_ = 0;
  race_closed_ = 0;
}

std::string mock_state::requests_json(std::optional<provider> p) const {
  std::string o = "[";
  std::lock_guard lock(records_mutex_);
  bool first = true;
  for (const auto& [seq, r] : records_) {
    if (p && r.who != *p) {
      continue;
    }
    o += first ? "{\"seq\":" : ",{\"seq\":";
    first = false;
    o += std::to_string(seq);
    o += ",\"provider\":\"";
    o += name(r.who);
    o += "\",\"method\":";
    append_json_string(o, r.method);
    o += ",\"path\":";
    append_json_string(o, r.target);
    o += ",\"headers\":{";
    for (std::size_t i = 0; i < r.headers.size(); ++i) {
      if (i > 0) {
        o += ',';
      }
      append_json_string(o, r.headers[i].first);
      o += ':';
      append_json_string(o, r.headers[i].second);
    }
    o += "},\"body\":";
    append_json_string(o, r.body);
    o += ",\"stream\":";
    o += r.stream ? "true" : "false";
    o += ",\"model\":";
    if (r.model) {
      append_json_string(o, *r.model);
    } else {
      o += "null";
    }
    o += '}';
  }
  o += ']';
  return o;
}

std::string mock_state::stats_json() const {
  std::string o = "{\"requests\":{";
  std::uint64_t total = 0;
  for (auto p : all_providers) {
    auto n = requests_[static_cast<std::size_t>(p)].load();
    total += n;
    o += '"';
    o += name(p);
    o += "\":" + std::to_string(n) + ",";
  }
  o += "\"total\":" + std::to_string(total) + "},\"connections\":{\"accepted\":"
       + std::to_string(accepted_.load()) + ",\"closed\":" + std::to_string(closed_.load())
       + ",\"open\":" + std::to_string(open_.load())
       + ",\"idle_closed\":" + std::to_string(idle_closed_.load())
       + ",\"race_closed\":" + std::to_string(race_closed_.load())
       + "},\"in_flight\":" + std::to_string(in_flight_.load()) + ",\"chaos\":{";
  std::lock_guard lock(chaos_mutex_);
  bool first = true;
  for (auto p : all_providers) {
    const auto& slot = chaos_[static_cast<std::size_t>(p)];
    if (slot.spec.rate <= 0) {
      continue;
    }
    o += first ? "\"" : ",\"";
    first = false;
    o += name(p);
    o += "\":{\"rate\":" + std::to_string(slot.spec.rate)
         + ",\"calls\":" + std::to_string(slot.calls) + ",\"faults\":" + std::to_string(slot.faults)
         + ",\"by_fault\":{";
    for (std::size_t i = 0; i < slot.by_fault.size(); ++i) {
      if (i > 0) {
        o += ',';
      }
      append_json_string(o, slot.spec.labels[i]);
      o += ':' + std::to_string(slot.by_fault[i]);
    }
    o += "}}";
  }
  o += "}}";
  return o;
}

}  // namespace ib::mock
