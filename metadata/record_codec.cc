#include "metadata/record_codec.h"

#include "absl/strings/str_cat.h"
#include "metadata/errors.h"
#include "store/snapshot_record.pb.h"

namespace cpp_overlay::metadata {

std::string EncodeRecord(const Snapshot& snapshot) {
  store::SnapshotRecord record;
  record.set_id(snapshot.id);
  record.set_kind(static_cast<int32_t>(snapshot.info.kind));
  record.set_parent(snapshot.info.parent);
  record.mutable_labels()->insert(snapshot.info.labels.begin(),
                                  snapshot.info.labels.end());
  record.set_created_at_ns(absl::ToUnixNanos(snapshot.info.created));
  record.set_updated_at_ns(absl::ToUnixNanos(snapshot.info.updated));
  record.set_size(snapshot.usage.size);
  record.set_inodes(snapshot.usage.inodes);
  for (uint64_t id : snapshot.ancestor_ids) record.add_ancestor_ids(id);
  std::string out;
  record.SerializeToString(&out);
  return out;
}

absl::StatusOr<Snapshot> DecodeRecord(absl::string_view key,
                                      absl::string_view bytes) {
  store::SnapshotRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        absl::StrCat("snapshot ", QuoteKey(key), ": corrupt metadata record"));
  }
  Snapshot snapshot;
  snapshot.id = record.id();
  snapshot.info.name = std::string(key);
  snapshot.info.parent = record.parent();
  snapshot.info.kind = static_cast<Kind>(record.kind());
  snapshot.info.labels.insert(record.labels().begin(), record.labels().end());
  snapshot.info.created = absl::FromUnixNanos(record.created_at_ns());
  snapshot.info.updated = absl::FromUnixNanos(record.updated_at_ns());
  snapshot.usage.size = record.size();
  snapshot.usage.inodes = record.inodes();
  snapshot.ancestor_ids.assign(record.ancestor_ids().begin(),
                               record.ancestor_ids().end());
  return snapshot;
}

}  // namespace cpp_overlay::metadata
