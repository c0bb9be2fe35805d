// Preloaded into the daemon by sync_failure_test, failing syncs as a failing
// disk would:
// - once the file named by $CPP_OVERLAY_FAIL_SYNC_TRIGGER exists, the next
//   fdatasync/fsync of a RocksDB write-ahead log (NNNNNN.log) fails with EIO
//   and removes the file;
// - once the file named by $CPP_OVERLAY_FAIL_SYNCFS_TRIGGER exists, the
//   next syncfs fails with EIO and removes the file.
// Every other sync is the real one.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// True once per creation of the file named by $`variable`, even if racing.
bool Triggered(const char* variable) {
  const char* trigger = std::getenv(variable);
  if (trigger == nullptr || access(trigger, F_OK) != 0) return false;
  return unlink(trigger) == 0;
}

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
  return Triggered("CPP_OVERLAY_FAIL_SYNC_TRIGGER");
}

using SyncFunction = int (*)(int);

int Real(const char* name, int fd) {
  auto real = reinterpret_cast<SyncFunction>(dlsym(RTLD_NEXT, name));
  return real(fd);
}

int FailOrCall(const char* name, int fd) {
  if (ShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(name, fd);
}

}  // namespace

extern "C" int fdatasync(int fd) { return FailOrCall("fdatasync", fd); }
extern "C" int fsync(int fd) { return FailOrCall("fsync", fd); }
extern "C" int syncfs(int fd) {
  if (Triggered("CPP_OVERLAY_FAIL_SYNCFS_TRIGGER")) {
    errno = EIO;
    return -1;
  }
  return Real("syncfs", fd);
}
