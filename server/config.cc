#include "server/config.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "toml++/toml.h"

namespace cpp_overlay::server {
namespace {

const std::vector<std::string>& LogLevels() {
  static const auto* levels = new std::vector<std::string>{
      "trace", "debug", "info", "warn", "error", "critical"};
  return *levels;
}

const std::vector<std::string>& LogFormats() {
  static const auto* formats = new std::vector<std::string>{"text", "json"};
  return *formats;
}

bool OneOf(const std::string& value, const std::vector<std::string>& allowed) {
  for (const std::string& a : allowed) {
    if (value == a) return true;
  }
  return false;
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

absl::Status KeyError(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", why));
}

absl::Status CheckAbsolutePath(absl::string_view key, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return KeyError(key,
                    absl::StrCat(Quote(path), " must be an absolute path"));
  }
  return absl::OkStatus();
}

// The TOML type each key takes.
enum class Type { kString, kBool, kInteger, kStringList, kDuration, kMode };

struct KeySpec {
  const char* key;
  Type type;
};

constexpr KeySpec kKeys[] = {
    {"address", Type::kString},
    {"root", Type::kString},
    {"log_level", Type::kString},
    {"log_format", Type::kString},
    {"socket_group", Type::kString},
    {"socket_mode", Type::kMode},
    {"metrics_address", Type::kString},
    {"mount_options", Type::kStringList},
    {"upperdir_label", Type::kBool},
    {"reclaim_entries_per_second", Type::kInteger},
    {"health_probe_interval", Type::kDuration},
    {"shutdown_grace", Type::kDuration},
};

const KeySpec* FindKey(absl::string_view key) {
  for (const KeySpec& spec : kKeys) {
    if (key == spec.key) return &spec;
  }
  return nullptr;
}

const char* TypeName(Type type) {
  switch (type) {
    case Type::kString:
      return "a string";
    case Type::kBool:
      return "true or false";
    case Type::kInteger:
      return "an integer";
    case Type::kStringList:
      return "an array of strings";
    case Type::kDuration:
      return "a duration string such as \"5s\"";
    case Type::kMode:
      return "an octal mode such as 0o660 or \"0660\"";
  }
  return "?";
}

// Sets `key` of `config` from `node`; the error says what the key takes.
absl::Status SetFromNode(Config& config, const KeySpec& spec,
                         const toml::node& node) {
  const std::string key = spec.key;
  absl::Status wrong_type =
      KeyError(key, absl::StrCat("must be ", TypeName(spec.type)));
  switch (spec.type) {
    case Type::kString: {
      const auto* value = node.as_string();
      if (value == nullptr) return wrong_type;
      std::string* field = key == "address"           ? &config.address
                           : key == "root"            ? &config.root
                           : key == "log_level"       ? &config.log_level
                           : key == "log_format"      ? &config.log_format
                           : key == "socket_group"    ? &config.socket_group
                           : key == "metrics_address" ? &config.metrics_address
                                                      : nullptr;
      if (field == nullptr) return absl::InternalError(key);
      *field = value->get();
      return absl::OkStatus();
    }
    case Type::kBool: {
      const auto* value = node.as_boolean();
      if (value == nullptr) return wrong_type;
      config.upperdir_label = value->get();
      return absl::OkStatus();
    }
    case Type::kInteger: {
      const auto* value = node.as_integer();
      if (value == nullptr) return wrong_type;
      config.reclaim_entries_per_second = value->get();
      return absl::OkStatus();
    }
    case Type::kStringList: {
      const auto* array = node.as_array();
      if (array == nullptr) return wrong_type;
      std::vector<std::string> values;
      for (const toml::node& element : *array) {
        const auto* value = element.as_string();
        if (value == nullptr) return wrong_type;
        values.push_back(value->get());
      }
      config.mount_options = std::move(values);
      return absl::OkStatus();
    }
    case Type::kDuration: {
      const auto* value = node.as_string();
      if (value == nullptr) return wrong_type;
      absl::Duration duration;
      if (!absl::ParseDuration(value->get(), &duration)) {
        return KeyError(
            key,
            absl::StrCat(Quote(value->get()),
                         " is not a duration such as \"5s\" or \"500ms\""));
      }
      (key == "health_probe_interval" ? config.health_probe_interval
                                      : config.shutdown_grace) = duration;
      return absl::OkStatus();
    }
    case Type::kMode: {
      if (const auto* value = node.as_integer()) {
        if (value->get() < 0 || value->get() > 07777) {
          return KeyError(key, absl::StrCat(value->get(), " is not a mode"));
        }
        // 438 would silently mean 0666: a mode number must be written in
        // octal (0o660) or as a string ("0660").
        if (value->get() != 0 &&
            (value->flags() & toml::value_flags::format_as_octal) ==
                toml::value_flags::none) {
          return KeyError(
              key, absl::StrCat(value->get(),
                                " is not written in octal; write the mode "
                                "as 0o660, or as a string, \"0660\""));
        }
        config.socket_mode = static_cast<mode_t>(value->get());
        return absl::OkStatus();
      }
      if (const auto* value = node.as_string()) {
        absl::StatusOr<mode_t> mode = ParseSocketMode(value->get());
        if (!mode.ok()) return KeyError(key, mode.status().message());
        config.socket_mode = *mode;
        return absl::OkStatus();
      }
      return wrong_type;
    }
  }
  return absl::InternalError(key);
}

std::string WithLine(const std::string& source,
                     const toml::source_region& region,
                     absl::string_view message) {
  return absl::StrCat(source, ":", region.begin.line, ": ", message);
}

}  // namespace

const std::vector<std::string>& ConfigKeys() {
  static const auto* keys = [] {
    auto* out = new std::vector<std::string>;
    for (const KeySpec& spec : kKeys) out->push_back(spec.key);
    return out;
  }();
  return *keys;
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  HostPort out;
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(address),
          " is not host:port (e.g. 127.0.0.1:9091 or [::1]:9091)"));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(address), " is not host:port (e.g. 127.0.0.1:9091 or :9091)"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (absl::StrContains(host, ':')) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(address), ": write an IPv6 host in brackets, e.g. [::1]:9091"));
    }
  }
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(address), ": port ", Quote(port), " is not 0-65535"));
  }
  out.port = static_cast<uint16_t>(port_number);
  out.host =
      host.empty() || host == "localhost" ? "127.0.0.1" : std::string(host);
  in6_addr ignored6;
  in_addr ignored4;
  if (inet_pton(AF_INET, out.host.c_str(), &ignored4) != 1 &&
      inet_pton(AF_INET6, out.host.c_str(), &ignored6) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(address), ": host ", Quote(host),
                     " must be an IP address or localhost"));
  }
  return out;
}

absl::StatusOr<mode_t> ParseSocketMode(absl::string_view text) {
  absl::string_view digits = text;
  if (absl::StartsWith(digits, "0o")) digits.remove_prefix(2);
  if (digits.empty() || digits.size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not an octal mode such as 0660"));
  }
  mode_t mode = 0;
  for (char c : digits) {
    if (c < '0' || c > '7') {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(text), " is not an octal mode such as 0660"));
    }
    mode = mode * 8 + (c - '0');
  }
  return mode;
}

absl::Status ValidateConfigKey(const Config& config, absl::string_view key) {
  if (key == "address") {
    if (absl::Status s = CheckAbsolutePath(key, config.address); !s.ok())
      return s;
    if (config.address.size() >= sizeof(sockaddr_un::sun_path)) {
      return KeyError(
          key, absl::StrCat("longer than a unix socket path may be (",
                            sizeof(sockaddr_un::sun_path) - 1, " bytes)"));
    }
    if (config.address.back() == '/') {
      return KeyError(key, "ends in /: give the socket file's path");
    }
  } else if (key == "root") {
    if (absl::Status s = CheckAbsolutePath(key, config.root); !s.ok()) return s;
    // The root's paths go into overlay mount options, where ',' separates
    // options, ':' lower directories and '\\' escapes.
    if (config.root.find_first_of(",:\\") != std::string::npos) {
      return KeyError(key,
                      absl::StrCat(Quote(config.root),
                                   " holds ',', ':' or '\\', which overlay "
                                   "mount options cannot carry"));
    }
  } else if (key == "log_level") {
    if (!OneOf(config.log_level, LogLevels())) {
      return KeyError(key,
                      absl::StrCat(Quote(config.log_level), " is not one of ",
                                   absl::StrJoin(LogLevels(), ", ")));
    }
  } else if (key == "log_format") {
    if (!OneOf(config.log_format, LogFormats())) {
      return KeyError(key,
                      absl::StrCat(Quote(config.log_format), " is not one of ",
                                   absl::StrJoin(LogFormats(), ", ")));
    }
  } else if (key == "socket_group") {
    for (char c : config.socket_group) {
      if (c == '/' || c == ':' ||
          absl::ascii_isspace(static_cast<unsigned char>(c))) {
        return KeyError(key, absl::StrCat(Quote(config.socket_group),
                                          " is not a group name"));
      }
    }
  } else if (key == "socket_mode") {
    if ((config.socket_mode & ~static_cast<mode_t>(0777)) != 0) {
      return KeyError(key, "only permission bits (at most 0777) are allowed");
    }
  } else if (key == "metrics_address") {
    if (config.metrics_address.empty()) return absl::OkStatus();
    absl::StatusOr<HostPort> parsed = ParseHostPort(config.metrics_address);
    if (!parsed.ok()) return KeyError(key, parsed.status().message());
  } else if (key == "mount_options") {
    for (const std::string& option : config.mount_options) {
      if (option.empty() || absl::StrContains(option, ',')) {
        return KeyError(
            key, absl::StrCat(Quote(option),
                              " must be one non-empty option without commas"));
      }
      for (const char* own : {"lowerdir=", "upperdir=", "workdir="}) {
        if (absl::StartsWith(option, own)) {
          return KeyError(
              key, absl::StrCat(Quote(option), ": the snapshotter sets ", own,
                                " itself"));
        }
      }
    }
  } else if (key == "upperdir_label") {
    return absl::OkStatus();
  } else if (key == "reclaim_entries_per_second") {
    if (config.reclaim_entries_per_second < 0) {
      return KeyError(key, "must be 0 (unlimited) or more");
    }
  } else if (key == "health_probe_interval") {
    absl::Duration d = config.health_probe_interval;
    if (d != absl::ZeroDuration() &&
        (d < absl::Milliseconds(100) || d > absl::Hours(1))) {
      return KeyError(key,
                      absl::StrCat(absl::FormatDuration(d),
                                   " must be 0 (off) or between 100ms and 1h"));
    }
  } else if (key == "shutdown_grace") {
    absl::Duration d = config.shutdown_grace;
    if (d < absl::ZeroDuration() || d > absl::Minutes(10)) {
      return KeyError(key, absl::StrCat(absl::FormatDuration(d),
                                        " must be between 0s and 10m"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown key ", Quote(key)));
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const Config& config) {
  for (const KeySpec& spec : kKeys) {
    if (absl::Status s = ValidateConfigKey(config, spec.key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseConfig(absl::string_view text,
                                   const std::string& source) {
  toml::table table;
  try {
    table = toml::parse(std::string_view(text.data(), text.size()), source);
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(
        WithLine(source, error.source(), std::string(error.description())));
  }
  Config config;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const KeySpec* spec = FindKey(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          WithLine(source, key.source(),
                   absl::StrCat("unknown key ", Quote(name), "; the keys are ",
                                absl::StrJoin(ConfigKeys(), ", "))));
    }
    absl::Status status = SetFromNode(config, *spec, node);
    if (status.ok()) status = ValidateConfigKey(config, name);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          WithLine(source, node.source(), status.message()));
    }
  }
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("config file ", path, " does not exist"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read config file ", path, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  // A directory opens as a stream and reads as empty: say so instead of
  // serving on defaults.
  if (in.bad() || std::filesystem::is_directory(path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read config file ", path, ": it is not a regular file"));
  }
  return ParseConfig(text.str(), path);
}

std::string DescribeConfig(const Config& config) {
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o",
                static_cast<unsigned>(config.socket_mode));
  return absl::StrCat(
      "address=", config.address, " root=", config.root,
      " log_level=", config.log_level, " log_format=", config.log_format,
      " socket_group=", config.socket_group.empty() ? "-" : config.socket_group,
      " socket_mode=", mode, " metrics_address=",
      config.metrics_address.empty() ? "off" : config.metrics_address,
      " mount_options=[", absl::StrJoin(config.mount_options, ","), "]",
      " upperdir_label=", config.upperdir_label ? "true" : "false",
      " reclaim_entries_per_second=", config.reclaim_entries_per_second,
      " health_probe_interval=",
      absl::FormatDuration(config.health_probe_interval),
      " shutdown_grace=", absl::FormatDuration(config.shutdown_grace));
}

}  // namespace cpp_overlay::server
