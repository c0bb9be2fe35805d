#include "server/health_command.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace cpp_overlay::server {

absl::StatusOr<std::string> CheckHealth(const std::string& address,
                                        const std::string& service,
                                        absl::Duration timeout) {
  auto channel = grpc::CreateChannel(absl::StrCat("unix:", address),
                                     grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
      response.status());
}

int RunHealth(const HealthFlags& flags, std::ostream& out) {
  absl::StatusOr<std::string> status =
      CheckHealth(flags.address, flags.service, flags.timeout);
  const std::string what =
      flags.service.empty()
          ? absl::StrCat("daemon at ", flags.address)
          : absl::StrCat("service ", flags.service, " at ", flags.address);
  if (!status.ok()) {
    if (absl::IsNotFound(status.status())) {
      out << "UNKNOWN: the " << what
          << " does not know that service; ask about \"\" or "
          << "containerd.services.snapshots.v1.Snapshots\n";
    } else {
      out << "UNREACHABLE: no answer from the " << what << " ("
          << status.status().message()
          << "); is the daemon running and --address its socket?\n";
    }
    return 1;
  }
  if (*status == "SERVING") {
    out << "SERVING: the " << what << " is serving\n";
    return 0;
  }
  out << *status << ": the " << what
      << " is not serving (stopping, or its root is not writable; see its "
         "log)\n";
  return 1;
}

}  // namespace cpp_overlay::server
