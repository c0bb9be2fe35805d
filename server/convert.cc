#include "server/convert.h"

namespace cpp_overlay::server {

void TimeToProto(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(time);
  int64_t seconds = nanos / 1000000000;
  int64_t rest = nanos % 1000000000;
  if (rest < 0) {
    rest += 1000000000;
    seconds -= 1;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest));
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& proto) {
  return absl::FromUnixSeconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

snapshots_v1::Kind KindToProto(metadata::Kind kind) {
  switch (kind) {
    case metadata::Kind::kView:
      return snapshots_v1::VIEW;
    case metadata::Kind::kActive:
      return snapshots_v1::ACTIVE;
    case metadata::Kind::kCommitted:
      return snapshots_v1::COMMITTED;
    case metadata::Kind::kUnknown:
      break;
  }
  return snapshots_v1::UNKNOWN;
}

void InfoToProto(const metadata::Info& info, snapshots_v1::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  out->set_kind(KindToProto(info.kind));
  TimeToProto(info.created, out->mutable_created_at());
  TimeToProto(info.updated, out->mutable_updated_at());
  out->mutable_labels()->insert(info.labels.begin(), info.labels.end());
}

metadata::Info InfoFromProto(const snapshots_v1::Info& proto) {
  metadata::Info info;
  info.name = proto.name();
  info.parent = proto.parent();
  info.kind = static_cast<metadata::Kind>(proto.kind());
  info.created = TimeFromProto(proto.created_at());
  info.updated = TimeFromProto(proto.updated_at());
  info.labels = LabelsFromProto(proto.labels());
  return info;
}

void MountsToProto(const std::vector<snapshotter::Mount>& mounts,
                   google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const snapshotter::Mount& mount : mounts) {
    containerd::types::Mount* proto = out->Add();
    proto->set_type(mount.type);
    proto->set_source(mount.source);
    for (const std::string& option : mount.options) proto->add_options(option);
  }
}

metadata::Labels LabelsFromProto(
    const google::protobuf::Map<std::string, std::string>& proto) {
  return metadata::Labels(proto.begin(), proto.end());
}

std::vector<std::string> PathsFromProto(const google::protobuf::FieldMask& mask) {
  return std::vector<std::string>(mask.paths().begin(), mask.paths().end());
}

}  // namespace cpp_overlay::server
