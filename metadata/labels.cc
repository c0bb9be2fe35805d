#include "metadata/labels.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "metadata/errors.h"

namespace cpp_overlay::metadata {
namespace {
constexpr absl::string_view kLabelsPath = "labels";
constexpr absl::string_view kLabelPathPrefix = "labels.";
}  // namespace

absl::Status ValidateLabels(const Labels& labels) {
  for (const auto& [key, value] : labels) {
    if (key.empty()) return InvalidRequest("label key must not be empty");
    if (key.size() + value.size() > kMaxLabelSize) {
      return InvalidRequest(absl::StrCat(
          "label key and value length (", key.size() + value.size(),
          " bytes) greater than maximum size (", kMaxLabelSize,
          " bytes), key: ", QuoteKey(key.substr(0, 64))));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> StoredLabels(const Labels& labels) {
  Labels stored;
  for (const auto& [key, value] : labels) {
    if (!value.empty()) stored.emplace(key, value);
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
        if (it == update.end() || it->second.empty()) {
          result.erase(label);
        } else {
          result[label] = it->second;
        }
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
