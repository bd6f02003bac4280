#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/request_record.hpp"
#include "storage/key_store.hpp"
#include "storage/key_store_impl.hpp"

// The request log half of `key_store` (declared in storage/key_store.hpp): appends, retention by
// count and by age, and paging newest first.

namespace ib::storage {

namespace {

using detail::is_key_part;
using detail::sep;
using detail::user_prefix;

/// Retention deletes at most this many records per call, so one transaction stays small after a
/// long pause or a lowered limit; later calls finish the job.
constexpr std::size_t retention_batch = 10'000;

// -- key layouts (design §6) ------------------------------------------------------------------

void append_be64(std::string& out, std::uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((x >> shift) & 0xff));
  }
}

std::uint64_t read_be64(std::string_view s) noexcept {
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    x = (x << 8) | static_cast<unsigned char>(s[i]);
  }
  return x;
}

std::uint64_t time_bits(std::int64_t created_us) noexcept {
  return created_us < 0 ? 0 : static_cast<std::uint64_t>(created_us);
}

/// Just above every key of `user_id` (the separator is \0, so \1 sorts after all of them).
std::string user_upper_bound(std::string_view user_id) {
  std::string k{user_id};
  k.push_back('\x01');
  return k;
}

/// requests: `user_id \0 created_us(8, BE) request_id`.
std::string request_key(std::string_view user_id, std::int64_t created_us, std::string_view id) {
  std::string k = user_prefix(user_id);
  append_be64(k, time_bits(created_us));
  k.append(id);
  return k;
}

/// requests_by_time (a secondary index for retention by age): `created_us(8, BE) user_id \0
/// request_id` -> empty.
std::string time_key_of(std::string_view request_key) {
  const std::size_t nul = request_key.find(sep);
  std::string k;
  k.reserve(request_key.size());
  k.append(request_key.substr(nul + 1, 8));
  k.append(request_key.substr(0, nul + 1));
  k.append(request_key.substr(nul + 1 + 8));
  return k;
}

std::string request_key_of_time_key(std::string_view time_key) {
  std::string k;
  k.reserve(time_key.size());
  const std::string_view rest = time_key.substr(8);
  const std::size_t nul = rest.find(sep);
  k.append(rest.substr(0, nul + 1));
  k.append(time_key.substr(0, 8));
  k.append(rest.substr(nul + 1));
  return k;
}

/// A stored record as the API shows it (`to_json`). Records are stored by `to_stored`, without
/// the id and time that `key` (`request_key`, the id from `id_offset`) holds; a store written
/// before that holds `to_json`'s text, passed on as it is.
result<std::string> record_json(std::string_view key, std::size_t id_offset,
                                std::string_view value) {
  if (!value.empty() && value.front() == '{') {
    return std::string{value};
  }
  auto r = from_stored(value);
  if (!r) {
    return r.error();
  }
  r->id = key.substr(id_offset);
  const std::uint64_t created = read_be64(key.substr(id_offset - 8, 8));
  r->created_us = created > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                      ? std::numeric_limits<std::int64_t>::max()
                      : static_cast<std::int64_t>(created);
  return to_json(*r);
}

// -- retention --------------------------------------------------------------------------------

/// Positions `c` on `user_id`'s newest request; nullopt when the user has none.
result<std::optional<lmdb::cursor::entry>> newest_request(lmdb::cursor& c,
                                                          std::string_view user_id) {
  auto e = c.get(MDB_SET_RANGE, user_upper_bound(user_id));
  if (!e) {
    return e;
  }
  e = *e ? c.get(MDB_PREV) : c.get(MDB_LAST);
  if (!e) {
    return e;
  }
  if (*e && !(*e)->first.starts_with(user_prefix(user_id))) {
    return std::optional<lmdb::cursor::entry>{};
  }
  return e;
}

/// Deletes a request record and its time-index entry.
result<void> delete_request(lmdb::txn& t, const request_log_dbs& db, std::string_view rkey) {
  if (auto r = t.del(db.requests, rkey); !r) {
    return r.error();
  }
  if (auto r = t.del(db.requests_by_time, time_key_of(rkey)); !r) {
    return r.error();
  }
  return {};
}

/// A user's number of request records and where it came from.
struct record_count {
  std::uint64_t n = 0;
  /// From request_counts, so it predates this transaction's changes; false: counted by a scan
  /// just now (a store written before the counts existed, or a damaged count), so it includes
  /// them.
  bool stored = false;
};

/// The number of `user_id`'s request records: from request_counts, or counted once. Any LMDB
/// error (reading the count or scanning) is returned, never taken for the end of the data.
result<record_count> request_count(lmdb::txn& t, const request_log_dbs& db,
                                   std::string_view user_id) {
  const std::string prefix = user_prefix(user_id);
  auto v = t.get(db.request_counts, prefix);
  if (!v) {
    return v.error();
  }
  if (*v && (*v)->size() == 8) {
    return record_count{read_be64(**v), true};
  }
  auto c = lmdb::cursor::open(t, db.requests);
  if (!c) {
    return c.error();
  }
  std::uint64_t n = 0;
  auto e = c->get(MDB_SET_RANGE, prefix);
  for (; e && *e && (*e)->first.starts_with(prefix); e = c->get(MDB_NEXT)) {
    ++n;
  }
  if (!e) {
    return e.error();
  }
  return record_count{n, false};
}

result<void> store_count(lmdb::txn& t, const request_log_dbs& db, std::string_view user_id,
                         std::uint64_t n) {
  std::string v;
  append_be64(v, n);
  if (auto r = t.put(db.request_counts, user_prefix(user_id), v); !r) {
    return r.error();
  }
  return {};
}

/// Drops `user_id`'s oldest records beyond the newest `max_records` (at most `budget`), given
/// that `added` records were just appended. O(records dropped), not O(records kept).
result<std::size_t> trim_user(lmdb::txn& t, const request_log_dbs& db, std::string_view user_id,
                              std::uint64_t added, std::size_t max_records, std::size_t budget) {
  auto count = request_count(t, db, user_id);
  if (!count) {
    return count.error();
  }
  // A count read from the table predates this batch; a freshly counted one includes it.
  std::uint64_t n = count->n + (count->stored ? added : 0);
  std::vector<std::string> doomed;
  if (n > max_records) {
    auto c = lmdb::cursor::open(t, db.requests);
    if (!c) {
      return c.error();
    }
    const std::string prefix = user_prefix(user_id);
    auto want = std::min<std::uint64_t>(n - max_records, budget);
    for (auto e = c->get(MDB_SET_RANGE, prefix);
         e && *e && (*e)->first.starts_with(prefix) && doomed.size() < want; e = c->get(MDB_NEXT)) {
      doomed.emplace_back((*e)->first);
    }
  }
  for (const auto& k : doomed) {
    if (auto r = delete_request(t, db, k); !r) {
      return r.error();
    }
  }
  if (auto r = store_count(t, db, user_id, n - doomed.size()); !r) {
    return r.error();
  }
  return doomed.size();
}

/// Drops records created before `cutoff_us`, oldest first, at most `budget` of them.
result<void> trim_by_age(lmdb::txn& t, const request_log_dbs& db, std::uint64_t cutoff_us,
                         std::size_t budget) {
  std::vector<std::string> doomed;
  {
    auto c = lmdb::cursor::open(t, db.requests_by_time);
    if (!c) {
      return c.error();
    }
    auto e = c->get(MDB_FIRST);
    while (e && *e && doomed.size() < budget && (*e)->first.size() > 8
           && read_be64((*e)->first) < cutoff_us) {
      doomed.emplace_back((*e)->first);
      e = c->get(MDB_NEXT);
    }
    if (!e) {
      return e.error();
    }
  }
  std::map<std::string, std::uint64_t, std::less<>> dropped;
  for (const auto& tk : doomed) {
    const std::string rk = request_key_of_time_key(tk);
    if (auto r = t.del(db.requests, rk); !r) {
      return r.error();
    }
    if (auto r = t.del(db.requests_by_time, tk); !r) {
      return r.error();
    }
    ++dropped[rk.substr(0, rk.find(sep))];
  }
  for (const auto& [user, n] : dropped) {
    auto count = request_count(t, db, user);
    if (!count) {
      return count.error();
    }
    // A count computed by scanning already reflects the deletions.
    std::uint64_t left = count->stored ? (count->n > n ? count->n - n : 0) : count->n;
    if (auto r = store_count(t, db, user, left); !r) {
      return r.error();
    }
  }
  return {};
}

}  // namespace

// -- request log ------------------------------------------------------------------------------

result<void> key_store::append_requests(const std::vector<request_record>& records,
                                        int max_records_per_user, std::int64_t max_age_s,
                                        std::int64_t now_unix) {
  for (const auto& r : records) {
    if (!is_key_part(r.user_id) || !is_key_part(r.id)) {
      return error{errc::invalid_request, "request record: invalid user id or request id"};
    }
  }
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  std::map<std::string_view, std::uint64_t> users;
  for (const auto& r : records) {
    const std::string rk = request_key(r.user_id, r.created_us, r.id);
    const std::string value = to_stored(r);
    // A record written again (the same user, time and id) replaces itself: it is not one more.
    // The common case, a new key, costs one B-tree search: the put that finds the key taken
    // writes nothing, and only then is the record overwritten.
    auto added = t->put(impl_->log.requests, rk, value, MDB_NOOVERWRITE);
    if (!added) {
      return added.error();
    }
    if (!*added) {
      if (auto put = t->put(impl_->log.requests, rk, value); !put) {
        return put.error();
      }
    }
    if (auto put = t->put(impl_->log.requests_by_time, time_key_of(rk), {}); !put) {
      return put.error();
    }
    users[r.user_id] += *added ? 1 : 0;
  }
  std::size_t budget = retention_batch;
  // Counts are kept up to date even when the count limit is off, so that turning it on later
  // finds them right.
  const std::size_t max_records = max_records_per_user > 0
                                      ? static_cast<std::size_t>(max_records_per_user)
                                      : std::numeric_limits<std::size_t>::max();
  for (const auto& [user, added] : users) {
    auto n = trim_user(*t, impl_->log, user, added, max_records, budget);
    if (!n) {
      return n.error();
    }
    budget -= *n;
  }
  if (max_age_s > 0 && budget > 0) {
    // cutoff = (now - max_age) in microseconds, saturating instead of overflowing.
    std::int64_t cutoff_s = 0;
    std::int64_t cutoff_us = 0;
    if (__builtin_sub_overflow(now_unix, max_age_s, &cutoff_s)) {
      cutoff_s = std::numeric_limits<std::int64_t>::min();
    }
    if (__builtin_mul_overflow(cutoff_s, std::int64_t{1'000'000}, &cutoff_us)) {
      cutoff_us = cutoff_s < 0 ? 0 : std::numeric_limits<std::int64_t>::max();
    }
    if (auto r = trim_by_age(*t, impl_->log, time_bits(cutoff_us), budget); !r) {
      return r.error();
    }
  }
  return t->commit();
}

result<key_store::page> key_store::list_requests(std::string_view user_id, std::size_t limit,
                                                 std::string_view before) const {
  page out;
  if (!is_key_part(user_id)) {
    return out;
  }
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto c = lmdb::cursor::open(*t, impl_->log.requests);
  if (!c) {
    return c.error();
  }
  const std::string prefix = user_prefix(user_id);
  const std::size_t id_offset = prefix.size() + 8;
  auto in_range = [&](const result<std::optional<lmdb::cursor::entry>>& e) {
    return e && *e && (*e)->first.starts_with(prefix) && (*e)->first.size() > id_offset;
  };
  auto e = newest_request(*c, user_id);
  if (!before.empty()) {
    // Walk back from the newest to the `before` record; a paging client's cursor sits at most
    // one page past where the previous page ended, and retention bounds the walk.
    bool found = false;
    for (; in_range(e); e = c->get(MDB_PREV)) {
      if ((*e)->first.substr(id_offset) == before) {
        found = true;
        e = c->get(MDB_PREV);
        break;
      }
    }
    if (!e) {
      return e.error();
    }
    if (!found) {
      return error{errc::invalid_request, "before: no request with that id", "before"};
    }
  }
  for (; in_range(e) && out.records_json.size() < limit; e = c->get(MDB_PREV)) {
    auto json = record_json((*e)->first, id_offset, (*e)->second);
    if (!json) {
      return json.error();
    }
    out.records_json.push_back(std::move(*json));
  }
  if (!e) {
    return e.error();
  }
  out.has_more = in_range(e);
  return out;
}

}  // namespace ib::storage
