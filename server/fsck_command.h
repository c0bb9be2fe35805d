// `containerd-cpp-overlay-grpc fsck --root DIR [--repair]`: checks a stopped
// daemon's root (snapshotter/fsck.h lists every check), prints one line per
// finding and a summary line on stdout, and tells the result by exit code.
#ifndef CPP_OVERLAY_SERVER_FSCK_COMMAND_H_
#define CPP_OVERLAY_SERVER_FSCK_COMMAND_H_

#include <string>

namespace cpp_overlay::server {

struct FsckFlags {
  std::string root;
  bool repair = false;
};

// Exit codes.
inline constexpr int kFsckClean = 0;  // no finding
inline constexpr int kFsckFindings =
    1;  // findings left (not repaired, or not safely repairable)
inline constexpr int kFsckRepaired = 2;  // every finding repaired
inline constexpr int kFsckError =
    3;  // could not check: no root, a daemon holds it, I/O error

// Runs fsck on `flags.root`; refuses (kFsckError) while a daemon holds it.
// Output, one line each:
//   <kind> <object>: <detail>[ (repair: <what --repair does>)]
//   repaired <kind> <object>: <what was done>        (with --repair)
//   fsck: <root>: <n> snapshots, <f> findings, <r> repaired, <l> left
// Errors go to stderr as "fsck: <message>".
int RunFsck(const FsckFlags& flags);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_FSCK_COMMAND_H_
