// Preloaded into the daemon by sync_failure_test: once the file named by
// $CPP_OVERLAY_FAIL_SYNC_TRIGGER exists, the next fdatasync/fsync of a
// RocksDB write-ahead log (NNNNNN.log) fails with EIO and removes the file,
// as a failing disk would. Every other sync is the real one.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

bool ShouldFail(int fd) {
  const char* trigger = std::getenv("CPP_OVERLAY_FAIL_SYNC_TRIGGER");
  if (trigger == nullptr || access(trigger, F_OK) != 0) return false;
  char link[64];
  char path[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 4) return false;
  path[n] = '\0';
  if (std::strcmp(path + n - 4, ".log") != 0) return false;
  return unlink(trigger) == 0;  // one failure per trigger, even if racing
}

using SyncFunction = int (*)(int);

int FailOrCall(const char* name, int fd) {
  if (ShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  auto real = reinterpret_cast<SyncFunction>(dlsym(RTLD_NEXT, name));
  return real(fd);
}

}  // namespace

extern "C" int fdatasync(int fd) { return FailOrCall("fdatasync", fd); }
extern "C" int fsync(int fd) { return FailOrCall("fsync", fd); }
