// Every entry of the metadata database as stored, and raw corrections to
// it: the interface between SnapshotStore and fsck (store_check.h), which
// must see and fix the indexes that normal calls keep consistent by
// construction. Nothing else uses these.
#ifndef CPP_OVERLAY_METADATA_STORE_DUMP_H_
#define CPP_OVERLAY_METADATA_STORE_DUMP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "metadata/types.h"

namespace cpp_overlay::metadata {

// One label index entry: snapshot `id` carries label `key` = `value`.
// Entries are equal when those three are; `snapshot` (the stored value, the
// snapshot's key or name) only saves Walk a lookup of the id.
struct LabelIndexEntry {
  std::string key;
  std::string value;
  uint64_t id = 0;
  std::string snapshot;

  friend bool operator<(const LabelIndexEntry& a, const LabelIndexEntry& b) {
    return std::tie(a.key, a.value, a.id) < std::tie(b.key, b.value, b.id);
  }
  friend bool operator==(const LabelIndexEntry& a, const LabelIndexEntry& b) {
    return std::tie(a.key, a.value, a.id) == std::tie(b.key, b.value, b.id);
  }
};

// The database at one point in time, in key order (see keys.h).
struct StoreDump {
  struct Record {
    std::string key;
    // DataLoss when the value does not decode.
    absl::StatusOr<Snapshot> snapshot;
  };
  std::vector<Record> records;                          // "s/" entries
  std::vector<std::pair<uint64_t, std::string>> ids;    // "i/" id -> key
  std::vector<std::pair<uint64_t, uint64_t>> children;  // "c/" parent, child
  std::optional<uint64_t> next_id;                      // "m/next_id"
  std::vector<LabelIndexEntry> labels;                  // "l/" entries
  std::optional<uint64_t> unsynced_below;               // "m/unsynced_below"
  // Keys that fit no layout (including malformed "i/", "c/", "m/" keys).
  std::vector<std::string> unknown_keys;
};

// Index and record corrections, written as one synced batch.
struct StoreRepair {
  std::vector<std::pair<uint64_t, std::string>> put_ids;
  std::vector<uint64_t> delete_ids;
  std::vector<std::pair<uint64_t, uint64_t>> put_children;
  std::vector<std::pair<uint64_t, uint64_t>> delete_children;
  // Rewrites the record of snapshot.info.name with `snapshot`.
  std::vector<Snapshot> put_records;
  std::optional<uint64_t> next_id;
  std::vector<LabelIndexEntry> put_labels;
  std::vector<LabelIndexEntry> delete_labels;

  bool empty() const {
    return put_ids.empty() && delete_ids.empty() && put_children.empty() &&
           delete_children.empty() && put_records.empty() && !next_id &&
           put_labels.empty() && delete_labels.empty();
  }
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_STORE_DUMP_H_
