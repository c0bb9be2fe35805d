// A periodic check that the daemon's root is still writable: creating and
// removing <dir>/.health-probe. A root that stops being writable (read-only
// remount after an I/O error, a vanished mount) makes the health service
// report NOT_SERVING until a probe succeeds again.
//
// A probe that blocks (a hung disk) blocks only the probe's own thread; the
// status then stays what it last was.
#ifndef CPP_OVERLAY_SERVER_ROOT_PROBE_H_
#define CPP_OVERLAY_SERVER_ROOT_PROBE_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cpp_overlay::server {

inline constexpr char kProbeFileName[] = ".health-probe";

class RootProbe {
 public:
  // Called with each probe's result from the probe's thread.
  using Callback = std::function<void(const absl::Status&)>;

  // Creates and removes <dir>/.health-probe. The error names the step and
  // keeps errno's code (PermissionDenied, ResourceExhausted, ...).
  static absl::Status ProbeOnce(const std::string& dir);

  // Probes `dir` every `interval` (> 0) on a new thread, the first time
  // after one interval, calling `on_result` each time.
  RootProbe(std::string dir, absl::Duration interval, Callback on_result);
  // Stops and joins the thread.
  ~RootProbe();

  RootProbe(const RootProbe&) = delete;
  RootProbe& operator=(const RootProbe&) = delete;

 private:
  void Run();

  const std::string dir_;
  const absl::Duration interval_;
  const Callback on_result_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_ROOT_PROBE_H_
