#include "snapshotter/kernel_features.h"

#include <dirent.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter {

bool OverlayHasIndexParameter() {
  return fs::Exists("/sys/module/overlay/parameters/index");
}

absl::Status CheckDType(const std::string& dir) {
  std::string probe = absl::StrCat(dir, "/.d_type_probe");
  if (absl::Status s = fs::RemoveAll(probe); !s.ok()) return s;
  if (absl::Status s = fs::MakeDir(probe, 0700); !s.ok()) return s;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fs::ErrnoStatus(errno, absl::StrCat("open ", dir));
  bool supported = false;
  while (struct dirent* entry = readdir(d)) {
    if (absl::string_view(entry->d_name) == ".d_type_probe") {
      supported = entry->d_type != DT_UNKNOWN;
      break;
    }
  }
  closedir(d);
  fs::RemoveAll(probe).IgnoreError();
  if (!supported) {
    return absl::FailedPreconditionError(absl::StrCat(
        "filesystem of ", dir,
        " does not support d_type; overlay needs it (reformat xfs with "
        "ftype=1)"));
  }
  return absl::OkStatus();
}

}  // namespace cpp_overlay::snapshotter
