// `containerd-cpp-overlay-grpc health`: asks a running daemon's
// grpc.health.v1.Health service whether it serves, for exec probes
// (Kubernetes, scripts). Exit status 0 when SERVING, 1 otherwise; one line
// on stdout either way.
#ifndef CPP_OVERLAY_SERVER_HEALTH_COMMAND_H_
#define CPP_OVERLAY_SERVER_HEALTH_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cpp_overlay::server {

struct HealthFlags {
  std::string address;  // the daemon's unix socket
  std::string service;  // "" asks about the daemon as a whole
  absl::Duration timeout = absl::Seconds(5);
};

// The status the daemon at `address` reports for `service`: "SERVING",
// "NOT_SERVING", ... Unavailable when nothing answers there, DeadlineExceeded
// after `timeout`, NotFound for a service it does not know.
absl::StatusOr<std::string> CheckHealth(const std::string& address,
                                        const std::string& service,
                                        absl::Duration timeout);

// Prints one line to `out` and returns the exit status.
int RunHealth(const HealthFlags& flags, std::ostream& out);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_HEALTH_COMMAND_H_
