#include "metadata/labels.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "metadata/errors.h"

namespace cpp_overlay::metadata {
namespace {
constexpr absl::string_view kLabelsPath = "labels";
constexpr absl::string_view kLabelPathPrefix = "labels.";

absl::Status ValidateLabelSize(absl::string_view key, absl::string_view value) {
  if (key.size() + value.size() > kMaxLabelSize) {
    return InvalidRequest(
        absl::StrCat("label key and value length (", key.size() + value.size(),
                     " bytes) greater than maximum size (", kMaxLabelSize,
                     " bytes), key: ", QuoteKey(key.substr(0, 64))));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status ValidateLabels(const Labels& labels) {
  for (const auto& [key, value] : labels) {
    if (key.empty()) return InvalidRequest("label key must not be empty");
    if (absl::Status s = ValidateLabelSize(key, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateInfoSize(const Info& info) {
  // A protobuf field's tag and length take at most 6 bytes; a map entry is
  // a message of two fields. Timestamps and kind take under 64 bytes.
  constexpr size_t kFieldFraming = 6;
  size_t size = 64 + info.name.size() + info.parent.size() + 2 * kFieldFraming;
  for (const auto& [key, value] : info.labels) {
    size += key.size() + value.size() + 3 * kFieldFraming;
  }
  if (size > kMaxInfoSize) {
    return InvalidRequest(absl::StrCat(
        "snapshot ", QuoteKey(info.name), ": its name, parent and ",
        info.labels.size(), " labels take ", size, " bytes, more than the ",
        kMaxInfoSize, " a Stat or List answer can carry"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> StoredLabels(const Labels& labels) {
  Labels stored;
  for (const auto& [key, value] : labels) {
    if (!value.empty()) {
      stored.emplace(key, value);
      continue;
    }
    // containerd's metadata checks the size of every label it is given,
    // dropped ones too.
    if (absl::Status s = ValidateLabelSize(key, value); !s.ok()) return s;
  }
  if (absl::Status s = ValidateLabels(stored); !s.ok()) return s;
  return stored;
}

absl::StatusOr<Labels> ApplyLabelUpdate(const Labels& current,
                                        const Labels& update,
                                        const std::vector<std::string>& paths,
                                        absl::string_view key) {
  Labels result;
  if (paths.empty()) {
    result = update;
  } else {
    result = current;
    for (const std::string& path : paths) {
      if (path == kLabelsPath) {
        result = update;
      } else if (absl::StartsWith(path, kLabelPathPrefix)) {
        std::string label(path.substr(kLabelPathPrefix.size()));
        auto it = update.find(label);
        // Empty (or missing): StoredLabels drops it, after checking it.
        result[label] = it == update.end() ? std::string() : it->second;
      } else {
        return InvalidRequest(absl::StrCat("cannot update ", QuoteKey(path),
                                           " field on snapshot ",
                                           QuoteKey(key)));
      }
    }
  }
  return StoredLabels(result);
}

}  // namespace cpp_overlay::metadata
