// containerd-cpp-overlay-grpc: the daemon and its operator commands.
// Subcommands: serve (the default), health, info, fsck, version. Flags and
// the config file -> Config, logging, signals; everything else lives in the
// libraries.
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/config.h"
#include "server/fsck_command.h"
#include "server/health_command.h"
#include "server/info_command.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/metrics_http_server.h"
#include "server/sd_notify.h"
#include "server/server.h"
#include "server/version.h"
#include "snapshotter/overlay_snapshotter.h"
#include "spdlog/spdlog.h"

namespace {

using cpp_overlay::server::Config;

constexpr char kProgram[] = "containerd-cpp-overlay-grpc";
// Exit status of configuration and usage errors (runtime failures exit 1).
constexpr int kUsageError = 2;
// fsck's 2 means "repaired": a mistyped flag must not read as that.
constexpr int kFsckUsageError = cpp_overlay::server::kFsckError;
// How often a metrics address that cannot be listened on is tried again.
constexpr absl::Duration kMetricsRetry = absl::Seconds(10);

// One line on stderr saying what is wrong and what to do.
int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  return code;
}

// --config and the flags that may override its keys, for one subcommand.
// Each flag is bound to a scratch value and copied into the Config only
// when it was given, so flags win over the file and the file over defaults.
class ConfigFlags {
 public:
  explicit ConfigFlags(CLI::App* app) : app_(app) {
    app->add_option(
           "--config", path_,
           "TOML config file; its keys are the long flags with '_' for '-' "
           "(flags win). A missing default file means defaults")
        ->capture_default_str();
  }

  // A string flag for `field`, named --<key with '-'>.
  void AddString(const char* key, std::string Config::*field,
                 const std::string& help,
                 const std::vector<std::string>& choices = {}) {
    auto value = std::make_shared<std::string>(defaults_.*field);
    CLI::Option* option = app_->add_option(FlagName(key), *value, help);
    if (!(defaults_.*field).empty()) option->default_str(defaults_.*field);
    if (!choices.empty()) option->check(CLI::IsMember(choices));
    apply_.push_back([option, value, field](Config& c) -> absl::Status {
      if (option->count() > 0) c.*field = *value;
      return absl::OkStatus();
    });
  }

  void AddServeFlags() {
    AddString("log_level", &Config::log_level,
              "trace, debug, info, warn, error or critical",
              {"trace", "debug", "info", "warn", "error", "critical"});
    AddString("log_format", &Config::log_format,
              "text or json (one JSON object per line)", {"text", "json"});
    AddString("socket_group", &Config::socket_group,
              "group that owns the socket (e.g. so a non-root containerd can "
              "connect)");
    {
      auto value = std::make_shared<std::string>();
      CLI::Option* option = app_->add_option(FlagName("socket_mode"), *value,
                                             "socket permissions, octal")
                                ->default_str("0660");
      apply_.push_back([option, value](Config& c) -> absl::Status {
        if (option->count() == 0) return absl::OkStatus();
        absl::StatusOr<mode_t> mode =
            cpp_overlay::server::ParseSocketMode(*value);
        if (!mode.ok())
          return absl::InvalidArgumentError(
              absl::StrCat("--socket-mode: ", mode.status().message()));
        c.socket_mode = *mode;
        return absl::OkStatus();
      });
    }
    AddString(
        "metrics_address", &Config::metrics_address,
        "serve Prometheus metrics at http://HOST:PORT/metrics (off when empty; "
        "an empty host means 127.0.0.1)");
    {
      auto value = std::make_shared<std::vector<std::string>>();
      CLI::Option* option =
          app_->add_option("--mount-option,--mount-options", *value,
                           "option appended to every overlay mount, e.g. "
                           "volatile; repeat for more "
                           "(replaces mount_options of the config file)");
      apply_.push_back([option, value](Config& c) -> absl::Status {
        if (option->count() > 0) c.mount_options = *value;
        return absl::OkStatus();
      });
    }
    {
      auto value = std::make_shared<bool>(false);
      CLI::Option* option = app_->add_flag(
          "--upperdir-label", *value,
          "add containerd's containerd.io/snapshot/overlay.upperdir label in "
          "Stat, "
          "Update and List (--upperdir-label=false to turn off)");
      apply_.push_back([option, value](Config& c) -> absl::Status {
        if (option->count() > 0) c.upperdir_label = *value;
        return absl::OkStatus();
      });
    }
    {
      // Parsed here, not by CLI11, which clamps a number too large for
      // int64 instead of refusing it.
      auto value = std::make_shared<std::string>();
      CLI::Option* option =
          app_->add_option("--reclaim-entries-per-second", *value,
                           "pace of background deletion of removed snapshots, "
                           "in entries per second "
                           "(0 = unlimited, at idle I/O priority)")
              ->default_str("0");
      apply_.push_back([option, value](Config& c) -> absl::Status {
        if (option->count() == 0) return absl::OkStatus();
        if (!absl::SimpleAtoi(*value, &c.reclaim_entries_per_second)) {
          return absl::InvalidArgumentError(
              absl::StrCat("--reclaim-entries-per-second: \"", *value,
                           "\" is not a whole number of entries per second"));
        }
        return absl::OkStatus();
      });
    }
    AddDuration("health_probe_interval", &Config::health_probe_interval,
                "how often the root is probed for writability (0 = never)");
    AddDuration("shutdown_grace", &Config::shutdown_grace,
                "how long running calls may finish on SIGTERM");
  }

  void AddDuration(const char* key, absl::Duration Config::*field,
                   const std::string& help) {
    auto value = std::make_shared<std::string>();
    CLI::Option* option =
        app_->add_option(FlagName(key), *value, help)
            ->default_str(absl::FormatDuration(defaults_.*field));
    std::string flag = FlagName(key);
    apply_.push_back([option, value, field, flag](Config& c) -> absl::Status {
      if (option->count() == 0) return absl::OkStatus();
      if (!absl::ParseDuration(*value, &(c.*field))) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": \"", *value,
                         "\" is not a duration such as \"5s\" or \"500ms\""));
      }
      return absl::OkStatus();
    });
  }

  // The file (if any) overlaid with the given flags, validated.
  absl::StatusOr<Config> Resolve() const {
    Config config;
    if (!path_.empty()) {
      absl::StatusOr<Config> loaded =
          cpp_overlay::server::LoadConfigFile(path_);
      const bool default_path =
          path_ == cpp_overlay::server::kDefaultConfigPath &&
          app_->get_option("--config")->count() == 0;
      if (loaded.ok()) {
        config = *std::move(loaded);
        from_file_ = true;
      } else if (!(absl::IsNotFound(loaded.status()) && default_path)) {
        return loaded.status();
      }
    }
    for (const auto& apply : apply_) {
      if (absl::Status s = apply(config); !s.ok()) return s;
    }
    // The file's values were checked as it was parsed, so a bad value here
    // came from a flag.
    if (absl::Status s = cpp_overlay::server::ValidateConfig(config); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(s.message(), " (from the command line)"));
    }
    return config;
  }

  // Where the configuration came from, for the start-up log.
  std::string Source() const {
    return from_file_ ? absl::StrCat("file ", path_, " and flags")
                      : "defaults and flags";
  }

 private:
  static std::string FlagName(const char* key) {
    std::string name = absl::StrCat("--", key);
    for (char& c : name) {
      if (c == '_') c = '-';
    }
    return name;
  }

  CLI::App* app_;
  const Config defaults_;
  std::string path_ = cpp_overlay::server::kDefaultConfigPath;
  mutable bool from_file_ = false;
  std::vector<std::function<absl::Status(Config&)>> apply_;
};

// The gid of `group`, for the socket.
absl::StatusOr<gid_t> LookUpGroup(const std::string& group) {
  std::vector<char> buffer(16384);
  struct group entry;
  struct group* found = nullptr;
  int err;
  while ((err = getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(),
                           &found)) == ERANGE &&
         buffer.size() < (1u << 20)) {
    buffer.resize(buffer.size() * 4);
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "socket_group \"", group, "\": no such group",
        err != 0 ? absl::StrCat(" (", std::strerror(err), ")") : "",
        "; create it or set another group"));
  }
  return found->gr_gid;
}

bool IsLoopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1";
}

// Set when the metadata store could not sync its log (see Serve).
std::atomic<bool> metadata_failed{false};
// Set once a stop signal was taken: a later failure must not send another,
// which the second-signal watch would take for the operator's.
std::atomic<bool> stopping{false};

// Waits for the next of `signals` (blocked in every thread) other than
// SIGHUP, which is logged and ignored: there is nothing to reload.
int NextStopSignal(const sigset_t& signals) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    spdlog::warn(
        "received {}: there is no configuration to reload; ignored "
        "(restart the daemon to apply a changed configuration)",
        strsignal(signal_number));
  }
  return signal_number;
}

int Serve(const Config& config, const std::string& source) {
  // Block the stop signals in every thread (gRPC's included) and take them
  // synchronously below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // SIGHUP too, so that it cannot end the daemon uncleanly; a systemd unit
  // treats a death by SIGHUP as a clean exit and would not restart it.
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Debian's Abseil is built in debug mode, so every absl::Mutex lock (ours
  // and gRPC's, several per call) would also update a process-wide lock-order
  // graph. The tests keep that check; the daemon does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  cpp_overlay::server::SetUpLogging(config.log_level, config.log_format);
  spdlog::info("{} {} starting: root={} address={}", kProgram,
               cpp_overlay::server::Version(), config.root, config.address);
  spdlog::info("configuration from {}: {}", source,
               cpp_overlay::server::DescribeConfig(config));

  std::optional<gid_t> socket_group;
  if (!config.socket_group.empty()) {
    absl::StatusOr<gid_t> gid = LookUpGroup(config.socket_group);
    if (!gid.ok()) {
      spdlog::critical("{}", std::string(gid.status().message()));
      return kUsageError;
    }
    socket_group = *gid;
  }

  cpp_overlay::snapshotter::OverlaySnapshotter::Options snapshotter_options;
  snapshotter_options.root = config.root;
  snapshotter_options.extra_overlay_options = config.mount_options;
  snapshotter_options.upperdir_label = config.upperdir_label;
  snapshotter_options.reclaim_entries_per_second =
      static_cast<uint64_t>(config.reclaim_entries_per_second);
  // A failed metadata sync leaves memory ahead of the disk: stop (exit 1,
  // so systemd or the kubelet restarts us) and recover from the disk.
  snapshotter_options.on_metadata_sync_failure = [](const absl::Status& s) {
    spdlog::critical("stopping: {}", std::string(s.message()));
    // Once: a second SIGTERM would end the shutdown at once.
    if (!metadata_failed.exchange(true) && !stopping.load())
      kill(getpid(), SIGTERM);
  };
  auto snapshotter =
      cpp_overlay::snapshotter::OverlaySnapshotter::Open(snapshotter_options);
  if (!snapshotter.ok()) {
    spdlog::critical("cannot open root {}: {}", config.root,
                     snapshotter.status().ToString());
    return 1;
  }
  cpp_overlay::snapshotter::OverlaySnapshotter* overlay = snapshotter->get();

  cpp_overlay::server::Metrics metrics([overlay] { return overlay->Stats(); });
  std::unique_ptr<cpp_overlay::server::RetryingMetricsHttpServer> metrics_server;
  if (!config.metrics_address.empty()) {
    auto started = cpp_overlay::server::RetryingMetricsHttpServer::Start(
        config.metrics_address, [&metrics] { return metrics.Render(); },
        kMetricsRetry);
    if (!started.ok()) {
      spdlog::critical("cannot serve metrics: {}",
                       std::string(started.status().message()));
      return kUsageError;
    }
    metrics_server = *std::move(started);
    auto host_port = cpp_overlay::server::ParseHostPort(config.metrics_address);
    if (host_port.ok() && !IsLoopback(host_port->host)) {
      spdlog::warn("metrics are served on {}, which is not a loopback address",
                   host_port->host);
    }
  }

  cpp_overlay::server::Server::Options server_options;
  server_options.address = config.address;
  server_options.socket_mode = config.socket_mode;
  server_options.socket_group = socket_group;
  server_options.snapshotter = overlay;
  server_options.metrics = &metrics;
  server_options.probe_dir = config.root;
  server_options.probe_interval = config.health_probe_interval;
  auto server = cpp_overlay::server::Server::Start(server_options);
  if (!server.ok()) {
    spdlog::critical("cannot serve: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("serving on {}", config.address);
  cpp_overlay::server::NotifyReady(absl::StrCat("serving on ", config.address));

  const int signal_number = NextStopSignal(stop_signals);
  stopping.store(true);
  // A second stop signal ends the wait for running calls (a Usage walk of a
  // huge layer does not stop at the grace period): every acknowledged
  // change is already synced, so exiting at once loses nothing.
  std::thread([stop_signals] {
    const int again = NextStopSignal(stop_signals);
    spdlog::warn(
        "received {} again: exiting now, without waiting for running calls",
        strsignal(again));
    spdlog::default_logger()->flush();
    _exit(1);
  }).detach();
  spdlog::info("{}, stopping (running calls get {})",
               metadata_failed.load()
                   ? std::string("the metadata could not be synced")
                   : absl::StrCat("received ", strsignal(signal_number)),
               absl::FormatDuration(config.shutdown_grace));
  cpp_overlay::server::NotifyStopping("stopping");
  (*server)->Shutdown(config.shutdown_grace);
  server->reset();
  metrics_server.reset();
  snapshotter->reset();  // closes the database cleanly
  spdlog::info("stopped");
  return metadata_failed.load() ? 1 : 0;
}

// Runs `argv` with "serve" in front when it names no subcommand, so the
// daemon's original form (`containerd-cpp-overlay-grpc --root X --address Y`)
// keeps working.
std::vector<std::string> WithDefaultSubcommand(
    int argc, char** argv, const std::vector<std::string>& subcommands) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool top_level_flag =
      !args.empty() &&
      (args[0] == "-h" || args[0] == "--help" || args[0] == "--version");
  bool has_subcommand = false;
  for (const std::string& s : subcommands)
    has_subcommand |= !args.empty() && args[0] == s;
  if (!has_subcommand && !top_level_flag) args.insert(args.begin(), "serve");
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives every thread that allocates its own arena; the gRPC pool
  // would otherwise multiply resident memory for no gain here.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{
      "containerd-cpp-overlay-grpc: an overlayfs snapshotter for containerd, "
      "served "
      "over gRPC on a unix socket (load it as a proxy_plugins entry with "
      "type = \"snapshot\"). Without a subcommand it serves."};
  app.name(kProgram);
  app.set_version_flag(
      "--version", absl::StrCat(kProgram, " ", cpp_overlay::server::Version()));
  app.require_subcommand(1);
  app.get_formatter()->column_width(36);

  // serve
  CLI::App* serve = app.add_subcommand(
      "serve",
      "serve containerd's snapshots API and gRPC health (the default)");
  ConfigFlags serve_flags(serve);
  serve_flags.AddString("address", &Config::address, "unix socket to serve on");
  serve_flags.AddString(
      "root", &Config::root,
      "directory holding metadata and snapshot data (mode 0700)");
  serve_flags.AddServeFlags();

  // health
  CLI::App* health =
      app.add_subcommand("health",
                         "ask a running daemon whether it serves; exit 0 when "
                         "SERVING, 1 otherwise, 2 on a bad flag or "
                         "configuration (for exec probes)");
  ConfigFlags health_config(health);
  health_config.AddString("address", &Config::address, "the daemon's socket");
  cpp_overlay::server::HealthFlags health_flags;
  std::string health_timeout = "5s";
  health->add_option("--service", health_flags.service,
                     "service to ask about: \"\" (the daemon) or "
                     "containerd.services.snapshots.v1.Snapshots");
  health->add_option("--timeout", health_timeout, "give up after this long")
      ->capture_default_str();

  // info
  CLI::App* info = app.add_subcommand(
      "info",
      "print the root, snapshot counts by kind, disk used and database size "
      "(asks the running daemon over its socket)");
  ConfigFlags info_config(info);
  info_config.AddString("address", &Config::address, "the daemon's socket");
  info_config.AddString("root", &Config::root, "the daemon's root");
  std::string info_timeout = "60s";
  info->add_option("--timeout", info_timeout, "give up after this long")
      ->capture_default_str();

  // fsck
  CLI::App* fsck = app.add_subcommand("fsck",
                                      "check a stopped daemon's root against "
                                      "its metadata; exit 0 clean, 1 findings, "
                                      "2 repaired, 3 error (also a bad flag or "
                                      "configuration)");
  ConfigFlags fsck_config(fsck);
  fsck_config.AddString("root", &Config::root, "the root to check");
  cpp_overlay::server::FsckFlags fsck_flags;
  fsck->add_flag("--repair", fsck_flags.repair,
                 "repair what can be repaired safely");

  // version
  CLI::App* version = app.add_subcommand("version", "print the version");

  std::vector<std::string> subcommands;
  for (const CLI::App* sub : app.get_subcommands({}))
    subcommands.push_back(sub->get_name());
  std::vector<std::string> args =
      WithDefaultSubcommand(argc, argv, subcommands);
  std::reverse(args.begin(), args.end());  // CLI11 takes them reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return Fail(
        fsck->parsed() ? kFsckUsageError : kUsageError,
        absl::StrCat(e.what(), "; see ", kProgram, " <subcommand> --help"));
  }

  if (version->parsed()) {
    std::printf("%s %s (gRPC %s)\n", kProgram, cpp_overlay::server::Version(),
                grpc::Version().c_str());
    return 0;
  }

  ConfigFlags* flags = health->parsed() ? &health_config
                       : info->parsed() ? &info_config
                                        : &serve_flags;
  if (fsck->parsed()) flags = &fsck_config;
  absl::StatusOr<Config> config = flags->Resolve();
  if (!config.ok()) {
    return Fail(fsck->parsed() ? kFsckUsageError : kUsageError,
                absl::StrCat(config.status().message(),
                             "; fix it (see --help and deploy/config.toml)"));
  }

  if (health->parsed()) {
    health_flags.address = config->address;
    if (!absl::ParseDuration(health_timeout, &health_flags.timeout) ||
        health_flags.timeout <= absl::ZeroDuration()) {
      return Fail(kUsageError,
                  absl::StrCat("--timeout: \"", health_timeout,
                               "\" is not a positive duration such as \"5s\""));
    }
    return cpp_overlay::server::RunHealth(health_flags, std::cout);
  }
  if (info->parsed()) {
    cpp_overlay::server::InfoFlags info_flags;
    info_flags.address = config->address;
    info_flags.root = config->root;
    if (!absl::ParseDuration(info_timeout, &info_flags.timeout) ||
        info_flags.timeout <= absl::ZeroDuration()) {
      return Fail(
          kUsageError,
          absl::StrCat("--timeout: \"", info_timeout,
                       "\" is not a positive duration such as \"60s\""));
    }
    return cpp_overlay::server::RunInfo(info_flags, std::cout);
  }
  if (fsck->parsed()) {
    fsck_flags.root = config->root;
    return cpp_overlay::server::RunFsck(fsck_flags);
  }
  return Serve(*config, flags->Source());
}
