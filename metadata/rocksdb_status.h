// rocksdb::Status -> absl::Status, in one place.
#ifndef CPP_OVERLAY_METADATA_ROCKSDB_STATUS_H_
#define CPP_OVERLAY_METADATA_ROCKSDB_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace cpp_overlay::metadata {

// `context` says what was being done, e.g. "write snapshot \"k\"".
absl::Status FromRocksDB(const rocksdb::Status& status,
                         absl::string_view context);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_ROCKSDB_STATUS_H_
