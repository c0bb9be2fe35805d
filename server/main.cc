// containerd-cpp-overlay-grpc: the daemon. Flags -> options, logging,
// signals; everything else lives in the libraries.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "server/server.h"
#include "snapshotter/overlay_snapshotter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

#ifndef CPP_OVERLAY_VERSION
#define CPP_OVERLAY_VERSION "dev"
#endif

namespace {

constexpr const char* kDefaultAddress =
    "/run/containerd-cpp-overlay-grpc/containerd-cpp-overlay-grpc.sock";
// The directory containerd 1.6's CRI reports to the kubelet for image
// filesystem stats of a proxy snapshotter named "cpp-overlay".
constexpr const char* kDefaultRoot =
    "/var/lib/containerd/io.containerd.snapshotter.v1.cpp-overlay";
constexpr absl::Duration kShutdownGrace = absl::Seconds(10);

struct Flags {
  std::string address = kDefaultAddress;
  std::string root = kDefaultRoot;
  std::string log_level = "info";
};

int Serve(const Flags& flags) {
  // Block the stop signals in every thread (gRPC's included) and take them
  // synchronously below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("containerd-cpp-overlay-grpc {} starting: root={} address={}",
               CPP_OVERLAY_VERSION, flags.root, flags.address);
  cpp_overlay::snapshotter::OverlaySnapshotter::Options snapshotter_options;
  snapshotter_options.root = flags.root;
  auto snapshotter =
      cpp_overlay::snapshotter::OverlaySnapshotter::Open(snapshotter_options);
  if (!snapshotter.ok()) {
    spdlog::critical("cannot open root {}: {}", flags.root,
                     snapshotter.status().ToString());
    return 1;
  }

  cpp_overlay::server::Server::Options server_options;
  server_options.address = flags.address;
  server_options.snapshotter = snapshotter->get();
  auto server = cpp_overlay::server::Server::Start(server_options);
  if (!server.ok()) {
    spdlog::critical("cannot serve: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("serving on {}", flags.address);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, stopping", strsignal(signal_number));
  (*server)->Shutdown(kShutdownGrace);
  server->reset();
  snapshotter->reset();  // closes the database cleanly
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "containerd-cpp-overlay-grpc: an overlayfs snapshotter for containerd, "
      "served over gRPC on a unix socket (load it as a proxy_plugins entry "
      "with type = \"snapshot\")"};
  Flags flags;
  app.add_option("--address", flags.address, "unix socket to serve on")
      ->capture_default_str();
  app.add_option("--root", flags.root,
                 "directory holding metadata and snapshot data (mode 0700)")
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn, error or critical")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}));
  app.set_version_flag("--version", std::string("containerd-cpp-overlay-grpc ") +
                                        CPP_OVERLAY_VERSION);
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_logger_mt("cpp-overlay");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  spdlog::flush_on(spdlog::level::info);
  return Serve(flags);
}
