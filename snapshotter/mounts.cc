#include "snapshotter/mounts.h"

#include "absl/strings/str_cat.h"

namespace cpp_overlay::snapshotter {

std::vector<Mount> MountsFor(const metadata::Snapshot& snapshot,
                             const Layout& layout, const MountOptions& options) {
  const bool view = snapshot.info.kind == metadata::Kind::kView;
  const std::vector<uint64_t>& ancestors = snapshot.ancestor_ids;

  if (ancestors.empty()) {
    return {Mount{"bind", layout.FsDir(snapshot.id), {view ? "ro" : "rw", "rbind"}}};
  }
  if (view && ancestors.size() == 1) {
    return {Mount{"bind", layout.FsDir(ancestors.front()), {"ro", "rbind"}}};
  }

  std::vector<std::string> overlay_options;
  if (options.index_off) overlay_options.push_back("index=off");
  if (options.userxattr) overlay_options.push_back("userxattr");
  if (!view) {
    overlay_options.push_back(absl::StrCat("workdir=", layout.WorkDir(snapshot.id)));
    overlay_options.push_back(absl::StrCat("upperdir=", layout.FsDir(snapshot.id)));
  }
  std::string lowerdir = "lowerdir=";
  lowerdir.reserve(lowerdir.size() + ancestors.size() * (layout.Root().size() + 24));
  for (size_t i = 0; i < ancestors.size(); ++i) {
    if (i > 0) lowerdir += ':';
    lowerdir += layout.FsDir(ancestors[i]);
  }
  overlay_options.push_back(std::move(lowerdir));
  overlay_options.insert(overlay_options.end(),
                         options.extra_overlay_options.begin(),
                         options.extra_overlay_options.end());
  return {Mount{"overlay", "overlay", std::move(overlay_options)}};
}

}  // namespace cpp_overlay::snapshotter
