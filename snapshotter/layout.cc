#include "snapshotter/layout.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cpp_overlay::snapshotter {
namespace {
constexpr absl::string_view kTempPrefix = "new-";

std::optional<uint64_t> ParseId(absl::string_view digits) {
  if (digits.empty() || digits.size() > 20) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  uint64_t id;
  if (!absl::SimpleAtoi(digits, &id)) return std::nullopt;
  return id;
}
}  // namespace

Layout::Layout(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string Layout::MetadataDir() const { return absl::StrCat(root_, "/metadata"); }
std::string Layout::SnapshotsDir() const { return absl::StrCat(root_, "/snapshots"); }
std::string Layout::TrashDir() const { return absl::StrCat(root_, "/trash"); }
std::string Layout::SpaceReservePath() const {
  return absl::StrCat(root_, "/space-reserve");
}
std::string Layout::UnsyncedMarkPath() const {
  return absl::StrCat(root_, "/unsynced-below");
}
std::string Layout::SnapshotDir(uint64_t id) const {
  return absl::StrCat(root_, "/snapshots/", id);
}
std::string Layout::FsDir(uint64_t id) const {
  return absl::StrCat(root_, "/snapshots/", id, "/fs");
}
std::string Layout::WorkDir(uint64_t id) const {
  return absl::StrCat(root_, "/snapshots/", id, "/work");
}

std::optional<uint64_t> Layout::IdOfEntry(absl::string_view entry) {
  if (absl::StartsWith(entry, kTempPrefix)) {
    return ParseId(entry.substr(kTempPrefix.size()));
  }
  return ParseId(entry);
}

}  // namespace cpp_overlay::snapshotter
