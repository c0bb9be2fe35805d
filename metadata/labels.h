// Label validation and containerd's Update field-path semantics: pure
// functions, no storage.
#ifndef CPP_OVERLAY_METADATA_LABELS_H_
#define CPP_OVERLAY_METADATA_LABELS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "metadata/types.h"

namespace cpp_overlay::metadata {

// InvalidArgument when a label's key is empty or its key and value together
// exceed kMaxLabelSize bytes (containerd labels.Validate).
absl::Status ValidateLabels(const Labels& labels);

// InvalidArgument when `info` would take more than kMaxInfoSize bytes on
// the wire (counting each field's framing generously).
absl::Status ValidateInfoSize(const Info& info);

// The labels as stored: those with an empty value dropped, as containerd
// drops them when it writes labels, whatever their key; the rest validated.
// Dropped ones are still held to the size limit, as containerd's metadata
// checks every label it is given.
absl::StatusOr<Labels> StoredLabels(const Labels& labels);

// Applies an Update request to `current` labels, as containerd's storage
// does: no paths replaces every label; "labels" replaces the map;
// "labels.<k>" sets k to update[k], deleting it when that is empty or
// missing. Any other path is InvalidArgument. The result is validated.
absl::StatusOr<Labels> ApplyLabelUpdate(const Labels& current,
                                        const Labels& update,
                                        const std::vector<std::string>& paths,
                                        absl::string_view key);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_LABELS_H_
