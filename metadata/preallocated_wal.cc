#include "metadata/preallocated_wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"

namespace cpp_overlay::metadata {
namespace {

// Zeros written in this many bytes per pwrite.
constexpr size_t kZeroBlock = 1 << 20;

rocksdb::IOStatus ErrnoStatus(const std::string& what, const std::string& path,
                              int error) {
  std::string message = what + " " + path + ": " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT) {
    return rocksdb::IOStatus::NoSpace(message);
  }
  return rocksdb::IOStatus::IOError(message);
}

// RocksDB names its write-ahead logs <number>.log.
bool IsWriteAheadLog(absl::string_view path) {
  absl::string_view name = path.substr(path.rfind('/') + 1);
  if (!absl::ConsumeSuffix(&name, ".log") || name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isdigit(c); });
}

rocksdb::IOStatus WriteAll(int fd, const char* data, size_t size,
                           uint64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t n = pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return rocksdb::IOStatus::OK();
}

class PreallocatedWalFile : public rocksdb::FSWritableFile {
 public:
  PreallocatedWalFile(std::string path, int fd, uint64_t chunk_bytes,
                      const rocksdb::FileOptions& options)
      : rocksdb::FSWritableFile(options),
        path_(std::move(path)),
        fd_(fd),
        chunk_bytes_(chunk_bytes) {}

  ~PreallocatedWalFile() override {
    if (fd_ >= 0) Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
  }

  // Writes zeros up to at least `end` and syncs them, so that the journal
  // records the new size and blocks once, here, and not at a record's sync.
  // On a full disk the zeros written so far are cut off again (they would
  // take the last free blocks from the records) and the file gives up
  // preallocating: records are then plainly appended, which needs far less
  // space, until RocksDB switches to a new log.
  rocksdb::IOStatus EnsureWritten(uint64_t end) {
    if (end <= written_ || !preallocating_) return rocksdb::IOStatus::OK();
    static const char kZeros[kZeroBlock] = {};
    uint64_t target = (end + chunk_bytes_ - 1) / chunk_bytes_ * chunk_bytes_;
    rocksdb::IOStatus s;
    for (uint64_t at = written_; at < target && s.ok();) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroBlock, target - at));
      s = WriteAll(fd_, kZeros, n, at, path_);
      at += n;
    }
    if (s.ok() && fdatasync(fd_) != 0) s = ErrnoStatus("sync", path_, errno);
    if (s.ok()) {
      written_ = target;
      return s;
    }
    if (!s.IsNoSpace()) return s;
    preallocating_ = false;
    if (ftruncate(fd_, static_cast<off_t>(std::max(size_, written_))) != 0) {
      return ErrnoStatus("truncate", path_, errno);
    }
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions&,
                           rocksdb::IODebugContext*) override {
    if (rocksdb::IOStatus s = EnsureWritten(size_ + data.size()); !s.ok()) {
      return s;
    }
    rocksdb::IOStatus s = WriteAll(fd_, data.data(), data.size(), size_, path_);
    if (s.ok()) {
      size_ += data.size();
      written_ = std::max(written_, size_);
    }
    return s;
  }

  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions&,
                             rocksdb::IODebugContext*) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("truncate", path_, errno);
    }
    size_ = size;
    written_ = size;
    return rocksdb::IOStatus::OK();
  }

  // The zero tail is cut off at a clean close; after a crash recovery skips it.
  rocksdb::IOStatus Close(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    if (fd_ < 0) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s;
    if (written_ > size_ && ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      s = ErrnoStatus("truncate", path_, errno);
    }
    if (close(fd_) != 0 && s.ok()) s = ErrnoStatus("close", path_, errno);
    fd_ = -1;
    return s;
  }

  // Records go straight to the file: nothing is buffered here.
  rocksdb::IOStatus Flush(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus Sync(const rocksdb::IOOptions&,
                         rocksdb::IODebugContext*) override {
    if (fdatasync(fd_) != 0) return ErrnoStatus("sync", path_, errno);
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    if (fsync(fd_) != 0) return ErrnoStatus("sync", path_, errno);
    return rocksdb::IOStatus::OK();
  }

  // pwrite and fdatasync on one descriptor may run at once; SnapshotStore
  // syncs the log from one thread while another appends.
  bool IsSyncThreadSafe() const override { return true; }

  uint64_t GetFileSize(const rocksdb::IOOptions&,
                       rocksdb::IODebugContext*) override {
    return size_;
  }

  rocksdb::IOStatus InvalidateCache(size_t, size_t) override {
    return rocksdb::IOStatus::OK();
  }

 private:
  const std::string path_;
  int fd_;
  const uint64_t chunk_bytes_;
  uint64_t size_ = 0;     // bytes of log records
  uint64_t written_ = 0;  // bytes of file written (records and zeros)
  bool preallocating_ = true;  // false once the disk was full
};

class PreallocatedWalFileSystem : public rocksdb::FileSystemWrapper {
 public:
  PreallocatedWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                            uint64_t chunk_bytes)
      : rocksdb::FileSystemWrapper(std::move(base)), chunk_bytes_(chunk_bytes) {}

  const char* Name() const override { return "CppOverlayPreallocatedWal"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& path, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (!IsWriteAheadLog(path) || options.use_direct_writes) {
      return target()->NewWritableFile(path, options, result, dbg);
    }
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("create", path, errno);
    auto file = std::make_unique<PreallocatedWalFile>(path, fd, chunk_bytes_,
                                                      options);
    // Fails only for errors other than a full disk (see EnsureWritten).
    rocksdb::IOStatus s = file->EnsureWritten(1);
    if (!s.ok()) {
      file.reset();
      unlink(path.c_str());
      return s;
    }
    *result = std::move(file);
    return rocksdb::IOStatus::OK();
  }

 private:
  const uint64_t chunk_bytes_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewPreallocatedWalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, uint64_t chunk_bytes) {
  return std::make_shared<PreallocatedWalFileSystem>(std::move(base),
                                                     chunk_bytes);
}

}  // namespace cpp_overlay::metadata
