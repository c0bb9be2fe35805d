// Snapshot <-> store.SnapshotRecord bytes (the persisted value format).
#ifndef CPP_OVERLAY_METADATA_RECORD_CODEC_H_
#define CPP_OVERLAY_METADATA_RECORD_CODEC_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "metadata/types.h"

namespace cpp_overlay::metadata {

// `snapshot.info.name` is not stored: it is the database key.
std::string EncodeRecord(const Snapshot& snapshot);

// DataLoss when `bytes` is not a valid record.
absl::StatusOr<Snapshot> DecodeRecord(absl::string_view key,
                                      absl::string_view bytes);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_RECORD_CODEC_H_
