// Private to the store module: what both backends share (range normalisation, request
// validation, transaction evaluation, error messages).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace fjord::store::internal {

// A normalised key range: exactly one of `single`, or [start, end) with `unbounded` meaning no end.
struct KeyRange {
  std::string start;
  std::string end;  // meaningful only when !single && !unbounded
  bool single = false;
  bool unbounded = false;

  bool Contains(std::string_view key) const;
};

// Validates and normalises an etcd-style (key, range_end); `what` names the request for errors.
base::Result<KeyRange> MakeRange(std::string_view what, const std::string& key,
                                 const std::string& range_end);

base::Status ValidateTxn(const TxnRequest& req);

base::Status CompactedError(Revision requested, Revision compacted);
base::Status FutureRevisionError(Revision requested, Revision current);
base::Status ClosedError(std::string_view store_name);

// What a backend exposes to ApplyTxn: reads see the writes made earlier in the same txn.
class TxnView {
 public:
  virtual ~TxnView() = default;
  virtual base::Result<std::optional<KeyValue>> Lookup(std::string_view key) = 0;
  // The live keys in `range` (values may be left empty).
  virtual base::Result<std::vector<KeyValue>> Scan(const KeyRange& range) = 0;
  // Applies one event: a put upserts the key, a delete removes it; both append to the log.
  // `index` orders events within one revision.
  virtual base::Status Write(const Event& event, int index) = 0;
};

struct TxnOutcome {
  bool succeeded = false;
  int64_t deleted = 0;
  std::vector<Event> events;  // empty when nothing changed: the revision does not advance
};

// Evaluates a validated request at revision `rev` (used only if something changes).
base::Result<TxnOutcome> ApplyTxn(TxnView& view, const TxnRequest& req, Revision rev);

}  // namespace fjord::store::internal
