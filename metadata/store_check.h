// fsck of the metadata alone: the records, the id index, the children index,
// the id counter and usage records checked against each other (keys.h has
// the layout). Pure functions over a StoreDump; snapshotter/fsck.h adds the
// directories and runs the repairs.
#ifndef CPP_OVERLAY_METADATA_STORE_CHECK_H_
#define CPP_OVERLAY_METADATA_STORE_CHECK_H_

#include <string>
#include <vector>

#include "metadata/store_dump.h"

namespace cpp_overlay::metadata {

// One inconsistency. `kind` is a stable kebab-case word tests and operators
// grep for (e.g. "missing-child-index"); `object` names the snapshot key or
// the entry; `repair` says what --repair does, empty when nothing is safe.
struct Finding {
  std::string kind;
  std::string object;
  std::string detail;
  std::string repair;
};

struct StoreCheck {
  std::vector<Finding> findings;
  // Fixes every finding whose `repair` is not empty. Never deletes a
  // snapshot record: only indexes are rebuilt from the records, and the id
  // counter is moved forward.
  StoreRepair repair;
};

// Checks:
//   corrupt-record       a value that does not decode             (report)
//   bad-kind             kind not view, active or committed       (report)
//   duplicate-id         two records with one id                  (report)
//   missing-id-index     record without its "i/" entry            (add it)
//   stale-id-index       "i/" entry naming no record of that id   (delete it)
//   dangling-parent      parent record missing                    (report)
//   parent-not-committed parent is active or a view               (report)
//   ancestor-mismatch    ancestor ids differ from the parent chain (report)
//   missing-child-index  record without its "c/" entry            (add it)
//   stale-child-index    "c/" entry no record matches             (delete it)
//   missing-label-index  a label of a record without its "l/" entry (add it)
//   stale-label-index    "l/" entry no record's label matches      (delete it)
//   next-id-behind       "m/next_id" missing or not above every id (raise it)
//   bad-usage            negative usage, or usage on a non-committed
//                        snapshot                                 (reset it)
//   unknown-key          a key of no known layout                 (report)
StoreCheck CheckStore(const StoreDump& dump);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_STORE_CHECK_H_
