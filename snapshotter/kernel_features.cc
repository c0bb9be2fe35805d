#include "snapshotter/kernel_features.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snapshotter/fs.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::snapshotter {

bool OverlayHasIndexParameter() {
  return fs::Exists("/sys/module/overlay/parameters/index");
}

bool IsInitialUidMap(absl::string_view uid_map_first_line) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(uid_map_first_line, ' ', absl::SkipEmpty());
  return fields.size() == 3 && fields[0] == "0" && fields[1] == "0" &&
         fields[2] == "4294967295";
}

bool KernelAtLeast(absl::string_view release, int major, int minor) {
  std::vector<absl::string_view> parts = absl::StrSplit(release, absl::MaxSplits('.', 2));
  int have_major = 0;
  int have_minor = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &have_major)) return false;
  // The minor may run into a suffix ("11-rc1", "11+").
  absl::string_view minor_text = parts[1];
  size_t digits = 0;
  while (digits < minor_text.size() && absl::ascii_isdigit(minor_text[digits])) ++digits;
  if (!absl::SimpleAtoi(minor_text.substr(0, digits), &have_minor)) return false;
  return have_major > major || (have_major == major && have_minor >= minor);
}

bool NeedsUserXattr(const std::string& root) {
  std::ifstream uid_map("/proc/self/uid_map");
  std::string first_line;
  // No uid_map: a kernel without user namespaces.
  if (!std::getline(uid_map, first_line) || IsInitialUidMap(first_line)) return false;
  struct statfs st;
  // userxattr is not permitted on tmpfs (tmpfs(5)).
  if (statfs(root.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC) return false;
  struct utsname un {};
  if (uname(&un) == 0 && KernelAtLeast(un.release, 5, 11)) return true;
  spdlog::warn("running in a user namespace on kernel {}, before 5.11: overlay mounts "
               "get no \"userxattr\" option", un.release);
  return false;
}

namespace {

// The d_type readdir reports for `dir`'s first entry other than . and ..
// (DT_UNKNOWN when the filesystem does not fill it in); nullopt when `dir`
// has no such entry.
absl::StatusOr<std::optional<unsigned char>> FirstEntryType(
    const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fs::ErrnoStatus(errno, absl::StrCat("open ", dir));
  std::optional<unsigned char> type;
  while (struct dirent* entry = readdir(d)) {
    absl::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    type = entry->d_type;
    break;
  }
  closedir(d);
  return type;
}

}  // namespace

absl::Status CheckDType(const std::string& dir) {
  // A root in use has entries to look at, so a restart on a full disk needs
  // no probe directory; only an empty root gets one.
  absl::StatusOr<std::optional<unsigned char>> type = FirstEntryType(dir);
  if (!type.ok()) return type.status();
  if (!type->has_value()) {
    std::string probe = absl::StrCat(dir, "/.d_type_probe");
    if (absl::Status s = fs::RemoveAll(probe); !s.ok()) return s;
    if (absl::Status s = fs::MakeDir(probe, 0700); !s.ok()) return s;
    type = FirstEntryType(dir);
    fs::RemoveAll(probe).IgnoreError();
    if (!type.ok()) return type.status();
  }
  const bool supported = type->has_value() && **type != DT_UNKNOWN;
  if (!supported) {
    return absl::FailedPreconditionError(absl::StrCat(
        "filesystem of ", dir,
        " does not support d_type; overlay needs it (reformat xfs with "
        "ftype=1)"));
  }
  return absl::OkStatus();
}

absl::Status CheckUpperdirFilesystem(const std::string& dir) {
  // The nearest directory that exists: checked before the root is made.
  std::filesystem::path existing(dir);
  while (!fs::Exists(existing.string()) && existing.has_parent_path() &&
         existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  struct statfs st;
  if (statfs(existing.c_str(), &st) != 0) {
    return fs::ErrnoStatus(errno, absl::StrCat("statfs ", existing.string()));
  }
  if (st.f_type == OVERLAYFS_SUPER_MAGIC) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir,
        " is on an overlayfs, which the kernel does not take as an overlay's "
        "upper layer; put the root on a real filesystem (in a container or "
        "pod, a hostPath or another volume)"));
  }
  return absl::OkStatus();
}

}  // namespace cpp_overlay::snapshotter
