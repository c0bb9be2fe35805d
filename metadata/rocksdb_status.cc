#include "metadata/rocksdb_status.h"

#include "absl/strings/str_cat.h"

namespace cpp_overlay::metadata {

absl::Status FromRocksDB(const rocksdb::Status& status,
                         absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  switch (status.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kTimedOut:
      return absl::UnavailableError(message);
    case rocksdb::Status::kIOError:
      // Disk full keeps its own code; server/status.cc picks the wire code
      // containerd 1.6 understands.
      if (status.subcode() == rocksdb::Status::kNoSpace) {
        return absl::ResourceExhaustedError(message);
      }
      return absl::InternalError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace cpp_overlay::metadata
