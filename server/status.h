// absl::Status -> grpc::Status: the one boundary between them.
#ifndef CPP_OVERLAY_SERVER_STATUS_H_
#define CPP_OVERLAY_SERVER_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace cpp_overlay::server {

// Codes map one to one (absl and gRPC share their numbering). containerd 1.6
// understands NotFound, AlreadyExists, InvalidArgument, FailedPrecondition,
// Unavailable, Unimplemented, Canceled and DeadlineExceeded and turns every
// other code into ErrUnknown; 2.x understands the rest too.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_STATUS_H_
