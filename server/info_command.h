// `containerd-cpp-overlay-grpc info`: what an operator wants to know about
// a node's snapshotter in one screen.
//
// Snapshot counts and disk use come from the running daemon over its
// socket (List, then Usage per snapshot: recorded at commit for committed
// layers, measured now for active ones), because the daemon holds the
// metadata database's lock. The database's files and the filesystem are
// read directly under --root. Without a reachable daemon the local parts
// are still printed and the exit status is 1.
#ifndef CPP_OVERLAY_SERVER_INFO_COMMAND_H_
#define CPP_OVERLAY_SERVER_INFO_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "metadata/types.h"

namespace cpp_overlay::server {

struct InfoFlags {
  std::string address;  // the daemon's unix socket
  std::string root;     // the daemon's root
  absl::Duration timeout = absl::Seconds(60);
};

// Snapshots as the daemon reports them.
struct SnapshotCounts {
  int64_t active = 0;
  int64_t views = 0;
  int64_t committed = 0;
  metadata::Usage active_usage;
  metadata::Usage committed_usage;
};

// Lists every snapshot of the daemon at `address` and sums their usage.
// Unavailable when nothing answers there.
absl::StatusOr<SnapshotCounts> QuerySnapshots(const std::string& address,
                                              absl::Duration timeout);

// "1.5 GiB" style; bytes below 1 KiB as "512 B".
std::string HumanBytes(int64_t bytes);

// Prints the report to `out`; returns 0, or 1 when the daemon did not
// answer.
int RunInfo(const InfoFlags& flags, std::ostream& out);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_INFO_COMMAND_H_
