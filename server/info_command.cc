#include "server/info_command.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "server/health_command.h"
#include "server/server.h"
#include "server/version.h"
#include "snapshotter/layout.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

void SetDeadline(grpc::ClientContext& context, absl::Time deadline) {
  context.set_deadline(absl::ToChronoTime(deadline));
}

// Files of the metadata database by kind.
struct DatabaseFiles {
  int64_t files = 0;
  int64_t bytes = 0;
  int64_t sst_bytes = 0;
  int64_t wal_bytes = 0;
};

absl::StatusOr<DatabaseFiles> ScanDatabase(const std::string& dir) {
  DatabaseFiles out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(dir, ": ", ec.message()));
  for (const auto& entry : it) {
    struct stat st;
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ++out.files;
    out.bytes += st.st_size;
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".sst")) out.sst_bytes += st.st_size;
    if (absl::EndsWith(name, ".log") && name != "LOG")
      out.wal_bytes += st.st_size;
  }
  return out;
}

int64_t CountEntries(const std::string& dir) {
  std::error_code ec;
  int64_t n = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

}  // namespace

std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB",
                                           "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof(text), "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

absl::StatusOr<SnapshotCounts> QuerySnapshots(const std::string& address,
                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  auto stub = v1::Snapshots::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("unix:", address),
                                grpc::InsecureChannelCredentials(), args));

  std::vector<v1::Info> infos;
  {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    v1::ListSnapshotsRequest request;
    auto reader = stub->List(&context, request);
    v1::ListSnapshotsResponse response;
    while (reader->Read(&response)) {
      for (const v1::Info& info : response.info()) infos.push_back(info);
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return FromGrpc(status, "list snapshots");
  }
  SnapshotCounts counts;
  for (const v1::Info& info : infos) {
    metadata::Usage* usage = nullptr;
    switch (info.kind()) {
      case v1::ACTIVE:
        ++counts.active;
        usage = &counts.active_usage;
        break;
      case v1::VIEW:
        ++counts.views;
        break;
      case v1::COMMITTED:
        ++counts.committed;
        usage = &counts.committed_usage;
        break;
      default:
        break;
    }
    if (usage == nullptr) continue;  // views have no layer of their own
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    v1::UsageRequest request;
    request.set_key(info.name());
    v1::UsageResponse response;
    grpc::Status status = stub->Usage(&context, request, &response);
    // A snapshot removed since List is simply no longer there.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;
    if (!status.ok())
      return FromGrpc(status, absl::StrCat("usage of ", info.name()));
    usage->size += response.size();
    usage->inodes += response.inodes();
  }
  return counts;
}

int RunInfo(const InfoFlags& flags, std::ostream& out) {
  const snapshotter::Layout layout(flags.root);
  out << "version:     containerd-cpp-overlay-grpc " << Version() << "\n";
  out << "root:        " << flags.root << "\n";

  absl::StatusOr<std::string> health =
      CheckHealth(flags.address, "", std::min(flags.timeout, absl::Seconds(5)));
  out << "address:     " << flags.address << " ("
      << (health.ok() ? *health : "not answering") << ")\n";

  int exit_code = 0;
  absl::StatusOr<SnapshotCounts> counts =
      health.ok() ? QuerySnapshots(flags.address, flags.timeout)
                  : health.status();
  if (counts.ok()) {
    out << "snapshots:   " << counts->active + counts->views + counts->committed
        << " (committed " << counts->committed << ", active " << counts->active
        << ", view " << counts->views << ")\n";
    const metadata::Usage total{
        counts->committed_usage.size + counts->active_usage.size,
        counts->committed_usage.inodes + counts->active_usage.inodes};
    out << "disk used:   " << HumanBytes(total.size) << " in " << total.inodes
        << " inodes (committed " << HumanBytes(counts->committed_usage.size)
        << ", active " << HumanBytes(counts->active_usage.size) << ")\n";
  } else {
    out << "snapshots:   unknown: cannot ask the daemon ("
        << counts.status().message()
        << "); start it, or pass the --address it serves on\n";
    exit_code = 1;
  }

  absl::StatusOr<DatabaseFiles> db = ScanDatabase(layout.MetadataDir());
  if (db.ok()) {
    out << "database:    " << layout.MetadataDir() << ": "
        << HumanBytes(db->bytes) << " in " << db->files << " files (tables "
        << HumanBytes(db->sst_bytes) << ", write-ahead log "
        << HumanBytes(db->wal_bytes) << ")\n";
  } else {
    // Typically --address without --root: the daemon answered, but this
    // is not its root, so the figures above and below do not belong together.
    out << "database:    unreadable: " << db.status().message()
        << "; pass the daemon's --root (or its --config)\n";
    exit_code = 1;
  }
  const int64_t trash = CountEntries(layout.TrashDir());
  if (trash >= 0) {
    out << "reclaiming:  " << trash << " removed directories not yet deleted\n";
  }
  struct statvfs fs;
  if (statvfs(flags.root.c_str(), &fs) == 0) {
    const int64_t size = static_cast<int64_t>(fs.f_blocks) * fs.f_frsize;
    const int64_t avail = static_cast<int64_t>(fs.f_bavail) * fs.f_frsize;
    out << "filesystem:  " << HumanBytes(avail) << " available of "
        << HumanBytes(size) << ", " << fs.f_favail << " of " << fs.f_files
        << " inodes available\n";
  } else {
    out << "filesystem:  cannot stat " << flags.root << "\n";
    exit_code = 1;
  }
  return exit_code;
}

}  // namespace cpp_overlay::server
