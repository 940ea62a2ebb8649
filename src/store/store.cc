// The parts of the Store contract shared by every backend: helpers, validation, txn evaluation.
#include "store/store.h"

#include <algorithm>
#include <future>
#include <set>

#include "base/strings.h"
#include "store/internal.h"

namespace fjord::store {

namespace {

constexpr std::string_view kCompactedMarker = "has been compacted";

}  // namespace

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every byte was 0xff: no upper bound
}

bool IsCompacted(const base::Status& status) {
  return status.code() == base::Code::kFailedPrecondition &&
         status.message().find(kCompactedMarker) != std::string_view::npos;
}

Compare Compare::Missing(std::string key) {
  return Compare{std::move(key), Target::kVersion, Result::kEqual, 0, {}};
}
Compare Compare::Exists(std::string key) {
  return Compare{std::move(key), Target::kVersion, Result::kGreater, 0, {}};
}
Compare Compare::ModRevisionIs(std::string key, Revision r) {
  return Compare{std::move(key), Target::kModRevision, Result::kEqual, r, {}};
}
Compare Compare::ValueIs(std::string key, std::string value) {
  return Compare{std::move(key), Target::kValue, Result::kEqual, 0, std::move(value)};
}

Op Op::Put(std::string key, std::string value) {
  return Op{Type::kPut, std::move(key), std::move(value), {}};
}
Op Op::Delete(std::string key, std::string range_end) {
  return Op{Type::kDelete, std::move(key), {}, std::move(range_end)};
}

base::Result<TxnResponse> Store::Txn(TxnRequest req) {
  std::promise<base::Result<TxnResponse>> promise;
  auto future = promise.get_future();
  TxnAsync(std::move(req),
           [&promise](base::Result<TxnResponse> r) { promise.set_value(std::move(r)); });
  return future.get();
}

base::Result<std::optional<KeyValue>> Store::Get(std::string_view key, Revision revision) {
  RangeRequest req;
  req.key = std::string(key);
  req.revision = revision;
  FJORD_ASSIGN_OR_RETURN(RangeResponse resp, Range(req));
  if (resp.kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(resp.kvs.front()));
}

base::Result<Revision> Store::Put(std::string key, std::string value) {
  TxnRequest req;
  req.success.push_back(Op::Put(std::move(key), std::move(value)));
  FJORD_ASSIGN_OR_RETURN(TxnResponse resp, Txn(std::move(req)));
  return resp.revision;
}

base::Result<int64_t> Store::Delete(std::string key, std::string range_end) {
  TxnRequest req;
  req.success.push_back(Op::Delete(std::move(key), std::move(range_end)));
  FJORD_ASSIGN_OR_RETURN(TxnResponse resp, Txn(std::move(req)));
  return resp.deleted;
}

namespace internal {

bool KeyRange::Contains(std::string_view key) const {
  if (single) return key == start;
  if (key < start) return false;
  return unbounded || key < end;
}

base::Result<KeyRange> MakeRange(std::string_view what, const std::string& key,
                                 const std::string& range_end) {
  if (key.size() > kMaxKeyBytes || range_end.size() > kMaxKeyBytes) {
    return base::InvalidArgument(std::string(what) + ": key of " +
                                 std::to_string(std::max(key.size(), range_end.size())) +
                                 " bytes; the limit is " + std::to_string(kMaxKeyBytes));
  }
  if (key.empty()) {
    return base::InvalidArgument(std::string(what) +
                                 ": empty key; keys are non-empty byte strings (use key \"\\0\" "
                                 "with range_end \"\\0\" to select every key)");
  }
  KeyRange r;
  r.start = key;
  if (range_end.empty()) {
    r.single = true;
  } else if (range_end == std::string_view("\0", 1)) {
    r.unbounded = true;
  } else if (range_end <= key) {
    return base::InvalidArgument(std::string(what) + ": range_end " +
                                 base::QuoteForDisplay(range_end) + " is not after key " +
                                 base::QuoteForDisplay(key) +
                                 "; the range [key, range_end) is empty");
  } else {
    r.end = range_end;
  }
  return r;
}

static base::Status ValidateBranch(std::string_view name, const std::vector<Op>& ops) {
  std::set<std::string_view> puts;
  std::vector<KeyRange> deletes;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    std::string what = "txn " + std::string(name) + " op " + std::to_string(i);
    FJORD_ASSIGN_OR_RETURN(KeyRange range, MakeRange(what, op.key, op.range_end));
    if (op.type == Op::Type::kDelete) {
      deletes.push_back(std::move(range));
      continue;
    }
    if (!op.range_end.empty()) {
      return base::InvalidArgument(what + ": a put takes no range_end");
    }
    if (op.value.size() > kMaxValueBytes) {
      return base::InvalidArgument(what + ": value of key " + base::QuoteForDisplay(op.key) +
                                   " is " + std::to_string(op.value.size()) +
                                   " bytes; the limit is " + std::to_string(kMaxValueBytes));
    }
    if (!puts.insert(op.key).second) {
      return base::InvalidArgument(what + ": key " + base::QuoteForDisplay(op.key) +
                                   " is put twice in one transaction");
    }
  }
  for (std::string_view key : puts) {
    for (const KeyRange& d : deletes) {
      if (d.Contains(key)) {
        return base::InvalidArgument("txn " + std::string(name) + ": key " +
                                     base::QuoteForDisplay(key) +
                                     " is both put and deleted in one transaction");
      }
    }
  }
  return base::Status::Ok();
}

base::Status ValidateTxn(const TxnRequest& req) {
  for (size_t i = 0; i < req.compare.size(); ++i) {
    if (req.compare[i].key.empty()) {
      return base::InvalidArgument("txn compare " + std::to_string(i) + ": empty key");
    }
  }
  FJORD_RETURN_IF_ERROR(ValidateBranch("success", req.success));
  return ValidateBranch("failure", req.failure);
}

base::Status CompactedError(Revision requested, Revision compacted) {
  return base::FailedPrecondition("revision " + std::to_string(requested) + " " +
                                  std::string(kCompactedMarker) +
                                  " (oldest available: " + std::to_string(compacted) +
                                  "); re-read at the current revision and watch from there");
}

base::Status FutureRevisionError(Revision requested, Revision current) {
  return base::InvalidArgument("revision " + std::to_string(requested) +
                               " is in the future (current revision: " + std::to_string(current) +
                               ")");
}

base::Status ClosedError(std::string_view store_name) {
  return base::Unavailable("store " + std::string(store_name) + " is closed");
}

namespace {

template <typename T>
bool CompareValues(const T& actual, Compare::Result result, const T& wanted) {
  switch (result) {
    case Compare::Result::kEqual:
      return actual == wanted;
    case Compare::Result::kNotEqual:
      return actual != wanted;
    case Compare::Result::kLess:
      return actual < wanted;
    case Compare::Result::kGreater:
      return actual > wanted;
  }
  return false;
}

bool Holds(const Compare& c, const std::optional<KeyValue>& kv) {
  static const KeyValue kMissing;
  const KeyValue& cur = kv ? *kv : kMissing;
  switch (c.target) {
    case Compare::Target::kVersion:
      return CompareValues(cur.version, c.result, c.number);
    case Compare::Target::kCreateRevision:
      return CompareValues(cur.create_revision, c.result, c.number);
    case Compare::Target::kModRevision:
      return CompareValues(cur.mod_revision, c.result, c.number);
    case Compare::Target::kValue:
      return CompareValues(cur.value, c.result, c.value);
  }
  return false;
}

}  // namespace

base::Result<TxnOutcome> ApplyTxn(TxnView& view, const TxnRequest& req, Revision rev) {
  TxnOutcome out;
  out.succeeded = true;
  for (const Compare& c : req.compare) {
    FJORD_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, view.Lookup(c.key));
    if (!Holds(c, kv)) {
      out.succeeded = false;
      break;
    }
  }
  const std::vector<Op>& ops = out.succeeded ? req.success : req.failure;
  for (const Op& op : ops) {
    if (op.type == Op::Type::kPut) {
      FJORD_ASSIGN_OR_RETURN(std::optional<KeyValue> prev, view.Lookup(op.key));
      Event ev;
      ev.type = Event::Type::kPut;
      ev.kv = KeyValue{op.key, op.value, prev ? prev->create_revision : rev, rev,
                       prev ? prev->version + 1 : 1};
      FJORD_RETURN_IF_ERROR(view.Write(ev, static_cast<int>(out.events.size())));
      out.events.push_back(std::move(ev));
      continue;
    }
    FJORD_ASSIGN_OR_RETURN(KeyRange range, MakeRange("delete", op.key, op.range_end));
    FJORD_ASSIGN_OR_RETURN(std::vector<KeyValue> victims, view.Scan(range));
    for (KeyValue& victim : victims) {
      Event ev;
      ev.type = Event::Type::kDelete;
      ev.kv.key = std::move(victim.key);
      ev.kv.mod_revision = rev;
      FJORD_RETURN_IF_ERROR(view.Write(ev, static_cast<int>(out.events.size())));
      out.events.push_back(std::move(ev));
      ++out.deleted;
    }
  }
  return out;
}

}  // namespace internal
}  // namespace fjord::store
