// The snapshot error vocabulary. The codes mirror containerd's storage layer
// (snapshots/storage/bolt.go), because containerd's proxy client turns them
// back into error classes and branches on them. Messages follow containerd's
// form `snapshot "k": <detail>` so errdefs' suffix stripping stays readable.
#ifndef CPP_OVERLAY_METADATA_ERRORS_H_
#define CPP_OVERLAY_METADATA_ERRORS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace cpp_overlay::metadata {

// NotFound: no snapshot under `key`.
absl::Status SnapshotNotFound(absl::string_view key);
// NotFound: `parent` of `key` does not exist.
absl::Status ParentNotFound(absl::string_view key, absl::string_view parent);
// AlreadyExists: `key` (or committed name) is taken.
absl::Status SnapshotExists(absl::string_view key);
// InvalidArgument: `parent` of `key` is not a committed snapshot.
absl::Status ParentNotCommitted(absl::string_view key, absl::string_view parent);
// FailedPrecondition: `key` has the wrong kind for `operation`.
absl::Status WrongKind(absl::string_view key, absl::string_view operation,
                       absl::string_view detail);
// FailedPrecondition: `key` still has children.
absl::Status HasChildren(absl::string_view key);
// InvalidArgument: a request field is malformed.
absl::Status InvalidRequest(absl::string_view detail);

// `key` C-escaped in double quotes, cut to a readable length: keys are
// opaque bytes and may hold newlines, NULs or megabytes.
std::string QuoteKey(absl::string_view key);
// The same for any text from a request (a filter, a pattern).
std::string QuoteText(absl::string_view text);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_ERRORS_H_
