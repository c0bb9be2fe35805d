// The daemon binary as a child process, for tests that kill and restart it:
// started as `<binary> --address <socket> --root <root>` with extra
// environment, its stderr in a log file, stopped with SIGKILL or SIGTERM.
// The destructor kills and reaps a daemon still running, so a failed test
// leaves no process behind.
#ifndef CPP_OVERLAY_TESTS_CRASH_DAEMON_PROCESS_H_
#define CPP_OVERLAY_TESTS_CRASH_DAEMON_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace cpp_overlay::testing {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

// The daemon under test: $CPP_OVERLAY_DAEMON, else the one this test was
// built with (CPP_OVERLAY_DAEMON_PATH, set by tests/crash/CMakeLists.txt).
inline std::string DaemonBinary() {
  const char* path = std::getenv("CPP_OVERLAY_DAEMON");
  if (path != nullptr && *path != '\0') return path;
#ifdef CPP_OVERLAY_DAEMON_PATH
  return CPP_OVERLAY_DAEMON_PATH;
#else
  return "";
#endif
}

class DaemonProcess {
 public:
  DaemonProcess(std::string binary, std::string root, std::string socket,
                std::string log_path)
      : binary_(std::move(binary)),
        root_(std::move(root)),
        socket_(std::move(socket)),
        log_path_(std::move(log_path)) {}
  ~DaemonProcess() { Kill(); }

  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts the daemon with `env` added to ours (e.g. CPP_OVERLAY_CRASH_AT).
  // Its stderr is appended to the log file.
  absl::Status Start(const std::map<std::string, std::string>& env = {}) {
    if (pid_ > 0)
      return absl::FailedPreconditionError("daemon already running");
    exit_status_ = -1;
    const char* level = std::getenv("CPP_OVERLAY_TEST_LOG_LEVEL");
    std::vector<std::string> args = {
        binary_,       "--address",           socket_, "--root", root_,
        "--log-level", level ? level : "warn"};
    // Extra daemon flags, space-separated (e.g. for a sanitizer build).
    if (const char* extra = std::getenv("CPP_OVERLAY_DAEMON_ARGS")) {
      for (absl::string_view arg :
           absl::StrSplit(extra, ' ', absl::SkipEmpty())) {
        args.emplace_back(arg);
      }
    }
    // Everything the child needs is built here: between fork() and exec()
    // the child of this multithreaded process may only call async-signal-safe
    // functions. setenv() or a vector growing there can deadlock on an
    // allocator lock another thread held at the fork.
    std::vector<std::string> environment = ChildEnvironment(env);
    std::vector<char*> argv = Pointers(args);
    std::vector<char*> envp = Pointers(environment);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      // A test that crashes or is killed (ctest's timeout) must not leave
      // its daemon running. Tests start daemons from their main thread,
      // whose exit is what PR_SET_PDEATHSIG watches.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int fd = open(log_path_.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
      }
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    pid_ = pid;
    return absl::OkStatus();
  }

  // Waits until the daemon answers a Stat (it serves only after start-up
  // reconciliation). FailedPrecondition when it exits first.
  absl::Status WaitReady(absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      // A fresh channel per probe: one that failed to connect backs off.
      auto stub = NewStub();
      if (!Running()) {
        return absl::FailedPreconditionError(
            absl::StrCat("daemon exited during start-up, status ", exit_status_,
                         "; log:\n", Log()));
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(300));
      snapshots_v1::StatSnapshotRequest request;
      request.set_key("cpp-overlay-test-readiness-probe");
      snapshots_v1::StatSnapshotResponse response;
      grpc::Status s = stub->Stat(&context, request, &response);
      if (s.error_code() == grpc::StatusCode::NOT_FOUND)
        return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError("daemon did not become ready");
  }

  // True while the child runs; reaps it (recording its status) when it ended.
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    exit_status_ = status;
    pid_ = -1;
    return false;
  }

  // Waits for the child to end by itself; returns its wait status.
  int Wait(absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    while (Running() && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    if (Running()) Kill();
    return exit_status_;
  }

  // SIGKILL and reap. No-op when not running.
  void Kill() { Signal(SIGKILL); }
  // SIGTERM (graceful stop) and reap; returns the wait status.
  int Terminate() {
    Signal(SIGTERM);
    return exit_status_;
  }

  bool KilledBySigkill() const {
    return exit_status_ >= 0 && WIFSIGNALED(exit_status_) &&
           WTERMSIG(exit_status_) == SIGKILL;
  }
  int exit_status() const { return exit_status_; }

  std::unique_ptr<snapshots_v1::Snapshots::Stub> NewStub() const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    args.SetMaxSendMessageSize(16 << 20);
    // Each start gets a fresh connection; do not wait long for a dead one.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
    return snapshots_v1::Snapshots::NewStub(grpc::CreateCustomChannel(
        "unix:" + socket_, grpc::InsecureChannelCredentials(), args));
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  const std::string& root() const { return root_; }
  const std::string& socket() const { return socket_; }

 private:
  // Our environment with `extra` set on top, as NAME=value strings.
  static std::vector<std::string> ChildEnvironment(
      const std::map<std::string, std::string>& extra) {
    std::vector<std::string> result;
    for (char** e = environ; *e != nullptr; ++e) {
      absl::string_view entry(*e);
      absl::string_view name = entry.substr(0, entry.find('='));
      if (extra.count(std::string(name)) == 0) result.emplace_back(entry);
    }
    for (const auto& [k, v] : extra) result.push_back(absl::StrCat(k, "=", v));
    return result;
  }

  // A null-terminated array pointing into `strings`, for execve.
  static std::vector<char*> Pointers(std::vector<std::string>& strings) {
    std::vector<char*> result;
    result.reserve(strings.size() + 1);
    for (std::string& s : strings) result.push_back(s.data());
    result.push_back(nullptr);
    return result;
  }

  void Signal(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_status_ = status;
    pid_ = -1;
  }

  const std::string binary_;
  const std::string root_;
  const std::string socket_;
  const std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_CRASH_DAEMON_PROCESS_H_
