// Wire protos <-> our types.
#ifndef CPP_OVERLAY_SERVER_CONVERT_H_
#define CPP_OVERLAY_SERVER_CONVERT_H_

#include <string>
#include <vector>

#include "containerd/services/snapshots/v1/snapshots.pb.h"
#include "containerd/types/mount.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "metadata/types.h"
#include "snapshotter/mounts.h"

namespace cpp_overlay::server {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

void TimeToProto(absl::Time time, google::protobuf::Timestamp* out);
absl::Time TimeFromProto(const google::protobuf::Timestamp& proto);

snapshots_v1::Kind KindToProto(metadata::Kind kind);

void InfoToProto(const metadata::Info& info, snapshots_v1::Info* out);
metadata::Info InfoFromProto(const snapshots_v1::Info& proto);

void MountsToProto(const std::vector<snapshotter::Mount>& mounts,
                   google::protobuf::RepeatedPtrField<containerd::types::Mount>* out);

metadata::Labels LabelsFromProto(
    const google::protobuf::Map<std::string, std::string>& proto);

std::vector<std::string> PathsFromProto(const google::protobuf::FieldMask& mask);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_CONVERT_H_
