#include "snapshotter/unsynced_mark_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter {

absl::StatusOr<std::optional<uint64_t>> ReadUnsyncedMarkFile(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return fs::ErrnoStatus(errno, absl::StrCat("open ", path));
  }
  char buf[32];
  ssize_t n = read(fd, buf, sizeof(buf));
  const int err = errno;
  close(fd);
  if (n < 0) return fs::ErrnoStatus(err, absl::StrCat("read ", path));
  uint64_t below = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)),
                        &below)) {
    return absl::DataLossError(absl::StrCat(path, " holds no snapshot id"));
  }
  return below;
}

absl::Status WriteUnsyncedMarkFile(const std::string& path, uint64_t below) {
  absl::StatusOr<std::optional<uint64_t>> had = ReadUnsyncedMarkFile(path);
  if (had.ok() && had->has_value()) below = std::max(below, **had);
  const std::string temporary = path + ".new";
  int fd = open(temporary.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fs::ErrnoStatus(errno, absl::StrCat("create ", temporary));
  const std::string text = absl::StrCat(below, "\n");
  errno = 0;
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno != 0 ? errno : EIO;  // a short write sets no errno
  const bool synced = written && fsync(fd) == 0;
  if (written) err = errno;
  close(fd);
  if (!written || !synced) {
    unlink(temporary.c_str());
    return fs::ErrnoStatus(
        err, absl::StrCat(written ? "fsync " : "write ", temporary));
  }
  if (absl::Status s = fs::Rename(temporary, path); !s.ok()) return s;
  return fs::SyncDir(std::filesystem::path(path).parent_path().string());
}

}  // namespace cpp_overlay::snapshotter
