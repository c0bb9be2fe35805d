// Checks of a stopped daemon's root for crash tests, through fsck
// (snapshotter/fsck.h) run in-process.
#ifndef CPP_OVERLAY_TESTS_CRASH_ROOT_CHECKS_H_
#define CPP_OVERLAY_TESTS_CRASH_ROOT_CHECKS_H_

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/fsck.h"

namespace cpp_overlay::testing {

// What a crash may leave behind and start-up reconciliation collects:
// directories metadata does not know. Anything else fsck finds means a crash
// broke the root.
inline bool IsCrashLeftover(const metadata::Finding& finding) {
  return finding.kind == "stray-directory" ||
         finding.kind == "temporary-leftover";
}

// fsck's findings on `root` (no repair), one "<kind> <object>: <detail>"
// string each.
inline absl::StatusOr<std::vector<metadata::Finding>> FsckFindings(
    const std::string& root) {
  absl::StatusOr<snapshotter::FsckReport> report =
      snapshotter::Fsck({.root = root});
  if (!report.ok()) return report.status();
  return report->findings;
}

inline std::string FindingsString(
    const std::vector<metadata::Finding>& findings) {
  std::string out;
  for (const metadata::Finding& f : findings) {
    absl::StrAppend(&out, "  ", f.kind, " ", f.object, ": ", f.detail, "\n");
  }
  return out;
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_CRASH_ROOT_CHECKS_H_
