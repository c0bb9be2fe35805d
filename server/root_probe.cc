#include "server/root_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::server {

absl::Status RootProbe::ProbeOnce(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/", kProbeFileName);
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return snapshotter::fs::ErrnoStatus(errno, absl::StrCat("create ", path));
  }
  close(fd);
  if (unlink(path.c_str()) != 0) {
    return snapshotter::fs::ErrnoStatus(errno, absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

RootProbe::RootProbe(std::string dir, absl::Duration interval,
                     Callback on_result)
    : dir_(std::move(dir)),
      interval_(interval),
      on_result_(std::move(on_result)),
      thread_([this] { Run(); }) {}

RootProbe::~RootProbe() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void RootProbe::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
      if (stop_) return;
    }
    on_result_(ProbeOnce(dir_));
  }
}

}  // namespace cpp_overlay::server
