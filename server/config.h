// The daemon's configuration: one TOML file (--config) whose keys are the
// long flags with '_' for '-'; a flag given on the command line wins over the
// file. deploy/config.toml documents every key.
//
// Keys are flat (no tables). Unknown keys, wrong types and bad values are
// rejected before the daemon starts, naming the file, line and key:
//   /etc/containerd-cpp-overlay-grpc/config.toml:7: log_level: "verbose" is
//   not one of trace, debug, info, warn, error, critical
#ifndef CPP_OVERLAY_SERVER_CONFIG_H_
#define CPP_OVERLAY_SERVER_CONFIG_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cpp_overlay::server {

inline constexpr char kDefaultConfigPath[] =
    "/etc/containerd-cpp-overlay-grpc/config.toml";
inline constexpr char kDefaultAddress[] =
    "/run/containerd-cpp-overlay-grpc/containerd-cpp-overlay-grpc.sock";
// The directory containerd 1.6's CRI reports to the kubelet for image
// filesystem stats of a proxy snapshotter named "cpp-overlay".
inline constexpr char kDefaultRoot[] =
    "/var/lib/containerd/io.containerd.snapshotter.v1.cpp-overlay";

// Every option, with its default. The TOML key of each field is its name.
struct Config {
  std::string address = kDefaultAddress;   // absolute unix socket path
  std::string root = kDefaultRoot;         // absolute directory
  std::string log_level = "info";          // trace ... critical
  std::string log_format = "text";         // text or json
  std::string socket_group;                // group name; "" = the daemon's own
  mode_t socket_mode = 0660;               // permission bits of the socket
  std::string metrics_address;             // "host:port"; "" = no metrics
  std::vector<std::string> mount_options;  // appended to overlay mounts
  bool upperdir_label = false;             // add containerd's upperdir label
  // Pace of background deletion of removed snapshots, in filesystem
  // entries unlinked per second; 0 = as fast as idle I/O priority allows.
  int64_t reclaim_entries_per_second = 0;
  // How often the root's writability is probed for health; 0 = never.
  absl::Duration health_probe_interval = absl::Seconds(5);
  // How long running calls may take to finish on SIGTERM.
  absl::Duration shutdown_grace = absl::Seconds(10);
};

// The keys ParseConfig accepts, in documentation order.
const std::vector<std::string>& ConfigKeys();

// Parses TOML `text` over the defaults. `source` names the text in errors,
// which are InvalidArgument with one line: "<source>:<line>: <key>: <why>".
absl::StatusOr<Config> ParseConfig(absl::string_view text,
                                   const std::string& source);

// Reads and parses `path`. NotFound when it does not exist (so callers can
// treat a missing default file as "no file"); InvalidArgument as ParseConfig.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Checks one field of `config` by its key; the error is "<key>: <why>".
// ParseConfig applies it to each key it reads; callers apply ValidateConfig
// after flags have been merged in.
absl::Status ValidateConfigKey(const Config& config, absl::string_view key);
absl::Status ValidateConfig(const Config& config);

// "key=value ..." for every option: the daemon's configuration log line.
std::string DescribeConfig(const Config& config);

// Parsed metrics_address: host (an IP literal, default 127.0.0.1) and port
// (0 = any free port).
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// socket_mode as written in flags and strings: octal, e.g. "0660" or "660".
absl::StatusOr<mode_t> ParseSocketMode(absl::string_view text);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_CONFIG_H_
