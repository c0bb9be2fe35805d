// The byte layout of every RocksDB key. This is a persisted format: changing
// it breaks existing roots.
//
//   "s/" <snapshot key or name>            -> store.SnapshotRecord
//   "i/" <id, 8 bytes big-endian>          -> snapshot key or name
//   "c/" <parent id, 8 bytes BE> <child id, 8 bytes BE> -> "" (children index)
//   "m/next_id"                            -> next id to hand out, 8 bytes BE
//   "l/" <label key length, 4 bytes BE> <label key>
//        <label value length, 4 bytes BE> <label value>
//        <id, 8 bytes BE>                  -> snapshot key or name (label
//                                             index; the id decides, the
//                                             name saves a lookup)
//   "m/label_index"                        -> "1" once the label index
//                                             covers every record
//   "m/unsynced_below"                     -> id, 8 bytes BE: snapshots
//                                             below it may have lost files
//                                             to a failed filesystem sync
//
// Snapshot keys are opaque byte strings (they may hold '/', spaces, NUL);
// nothing here parses them, they are only appended.
#ifndef CPP_OVERLAY_METADATA_KEYS_H_
#define CPP_OVERLAY_METADATA_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

namespace cpp_overlay::metadata::keys {

inline constexpr absl::string_view kSnapshotPrefix = "s/";
inline constexpr absl::string_view kIdPrefix = "i/";
inline constexpr absl::string_view kChildPrefix = "c/";
inline constexpr absl::string_view kNextId = "m/next_id";
inline constexpr absl::string_view kLabelPrefix = "l/";
inline constexpr absl::string_view kLabelIndexReady = "m/label_index";
inline constexpr absl::string_view kUnsyncedBelow = "m/unsynced_below";

std::string Snapshot(absl::string_view key);
std::string Id(uint64_t id);
std::string Child(uint64_t parent_id, uint64_t child_id);
// Prefix of every Child() entry of `parent_id`.
std::string ChildrenOf(uint64_t parent_id);

// Label index entry: snapshot `id` has label `key` = `value`.
std::string Label(absl::string_view key, absl::string_view value, uint64_t id);
// Prefix of every Label() entry of label `key` (any value).
std::string LabelKeyPrefix(absl::string_view key);
// Prefix of every Label() entry of label `key` with exactly `value`.
std::string LabelValuePrefix(absl::string_view key, absl::string_view value);

struct LabelEntry {
  absl::string_view key;
  absl::string_view value;
  uint64_t id = 0;
};
// The parts of a Label() key; nullopt for other or malformed keys.
std::optional<LabelEntry> LabelEntryOf(absl::string_view db_key);

std::string EncodeId(uint64_t id);
// nullopt unless `bytes` is exactly 8 bytes.
std::optional<uint64_t> DecodeId(absl::string_view bytes);

// The snapshot key inside a Snapshot() key; nullopt for other keys.
std::optional<absl::string_view> SnapshotKeyOf(absl::string_view db_key);
// The id inside an Id() key; nullopt for other keys.
std::optional<uint64_t> IdOf(absl::string_view db_key);
// The child id inside a Child() key; nullopt for other keys.
std::optional<uint64_t> ChildIdOf(absl::string_view db_key);
// The parent id inside a Child() key; nullopt for other keys.
std::optional<uint64_t> ParentIdOf(absl::string_view db_key);

}  // namespace cpp_overlay::metadata::keys

#endif  // CPP_OVERLAY_METADATA_KEYS_H_
