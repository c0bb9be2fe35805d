#include "server/status.h"

namespace cpp_overlay::server {

#define CPP_OVERLAY_SAME_CODE(absl_code, grpc_code)                  \
  static_assert(static_cast<int>(absl::StatusCode::absl_code) ==     \
                    static_cast<int>(grpc::StatusCode::grpc_code),   \
                #absl_code " and " #grpc_code " differ")
CPP_OVERLAY_SAME_CODE(kOk, OK);
CPP_OVERLAY_SAME_CODE(kCancelled, CANCELLED);
CPP_OVERLAY_SAME_CODE(kUnknown, UNKNOWN);
CPP_OVERLAY_SAME_CODE(kInvalidArgument, INVALID_ARGUMENT);
CPP_OVERLAY_SAME_CODE(kDeadlineExceeded, DEADLINE_EXCEEDED);
CPP_OVERLAY_SAME_CODE(kNotFound, NOT_FOUND);
CPP_OVERLAY_SAME_CODE(kAlreadyExists, ALREADY_EXISTS);
CPP_OVERLAY_SAME_CODE(kPermissionDenied, PERMISSION_DENIED);
CPP_OVERLAY_SAME_CODE(kResourceExhausted, RESOURCE_EXHAUSTED);
CPP_OVERLAY_SAME_CODE(kFailedPrecondition, FAILED_PRECONDITION);
CPP_OVERLAY_SAME_CODE(kAborted, ABORTED);
CPP_OVERLAY_SAME_CODE(kOutOfRange, OUT_OF_RANGE);
CPP_OVERLAY_SAME_CODE(kUnimplemented, UNIMPLEMENTED);
CPP_OVERLAY_SAME_CODE(kInternal, INTERNAL);
CPP_OVERLAY_SAME_CODE(kUnavailable, UNAVAILABLE);
CPP_OVERLAY_SAME_CODE(kDataLoss, DATA_LOSS);
CPP_OVERLAY_SAME_CODE(kUnauthenticated, UNAUTHENTICATED);
#undef CPP_OVERLAY_SAME_CODE

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Disk full (ENOSPC, EDQUOT, RocksDB's NoSpace) is ResourceExhausted below
  // server/, which containerd 1.6 reports as "unknown". It goes out as
  // Unavailable instead: containerd maps that to ErrUnavailable, its class
  // for "temporarily unavailable, try again" (the condition passes once space
  // is freed, with the same request), and passes it on to the caller. Not
  // FailedPrecondition: containerd's garbage collector ignores that code from
  // Remove ("has children", metadata/snapshot.go pruneBranch), so a Remove
  // failing for lack of space would be dropped silently. The message keeps
  // "No space left on device".
  if (absl::IsResourceExhausted(status)) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(status.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace cpp_overlay::server
