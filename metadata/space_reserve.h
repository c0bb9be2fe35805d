// SpaceReserve: a file of allocated blocks kept next to the metadata, given
// back to the filesystem when the disk is full so that the metadata can
// still take the writes that free space.
//
// On a full disk every metadata write needs a few blocks (a write-ahead log
// chunk, a memtable flush, RocksDB's files at open). Without them the
// daemon can neither start nor Remove, and containerd's garbage collector,
// the one thing that would free space, is stuck too. So the store keeps
// this file while space is plentiful, deletes it when a write or the open
// fails for lack of space, and makes it again once enough is free.
#ifndef CPP_OVERLAY_METADATA_SPACE_RESERVE_H_
#define CPP_OVERLAY_METADATA_SPACE_RESERVE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cpp_overlay::metadata {

class SpaceReserve {
 public:
  // The size for a filesystem of `filesystem_bytes`: 1% of it, between
  // 4 MiB and 64 MiB (RocksDB needs a log chunk of 1 MiB and up to a 4 MiB
  // memtable flush at a time).
  static uint64_t SizeFor(uint64_t filesystem_bytes);

  // `path`: the file; its filesystem's size sets the reserve's size. Empty:
  // no reserve (every call is a no-op).
  explicit SpaceReserve(std::string path);

  // Makes the file if it is missing and at least twice its size is free
  // (so it never takes the space a full disk just got back; for root,
  // blocks the filesystem keeps back for root count as free). True when the
  // file is there afterwards; false, with an OK status, when there was too
  // little space to make it; an error when it could not be made otherwise.
  absl::StatusOr<bool> Ensure();

  // Deletes the file. True when it was there, i.e. space was freed.
  bool Release();

  // Stops keeping a reserve (after Ensure failed for another reason than
  // space): every call is then a no-op, as without a path.
  void Disable() { path_.clear(); }

  // Whether the file is there (as of the last Ensure or Release). Safe to
  // read from any thread; the other calls must not run concurrently.
  bool held() const { return held_.load(); }
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint64_t bytes_ = 0;
  std::atomic<bool> held_{false};
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_SPACE_RESERVE_H_
