#include "server/fsck_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "snapshotter/fsck.h"

namespace cpp_overlay::server {

int RunFsck(const FsckFlags& flags) {
  if (flags.root.empty() || flags.root[0] != '/') {
    std::fprintf(stderr, "fsck: root \"%s\" must be an absolute path\n",
                 flags.root.c_str());
    return kFsckError;
  }
  absl::StatusOr<snapshotter::FsckReport> report =
      snapshotter::Fsck({.root = flags.root, .repair = flags.repair});
  if (!report.ok()) {
    std::fprintf(stderr, "fsck: %s\n", report.status().ToString().c_str());
    return kFsckError;
  }
  for (size_t i = 0; i < report->findings.size(); ++i) {
    const metadata::Finding& f = report->findings[i];
    std::string line = absl::StrCat(f.kind, " ", f.object, ": ", f.detail);
    if (!f.repair.empty()) absl::StrAppend(&line, " (repair: ", f.repair, ")");
    std::printf("%s\n", line.c_str());
  }
  for (size_t i = 0; i < report->findings.size(); ++i) {
    if (!report->repaired[i]) continue;
    const metadata::Finding& f = report->findings[i];
    std::printf("repaired %s %s: %s\n", f.kind.c_str(), f.object.c_str(),
                f.repair.c_str());
  }
  const int findings = static_cast<int>(report->findings.size());
  const int repaired = report->repaired_count();
  std::printf("fsck: %s: %d snapshots, %d findings, %d repaired, %d left\n",
              flags.root.c_str(), report->snapshots, findings, repaired,
              findings - repaired);
  std::fflush(stdout);
  if (findings == 0) return kFsckClean;
  if (repaired == findings) return kFsckRepaired;
  return kFsckFindings;
}

}  // namespace cpp_overlay::server
