#include "snapshotter/fsck.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "metadata/errors.h"
#include "metadata/snapshot_store.h"
#include "snapshotter/disk_usage.h"
#include "snapshotter/fs.h"
#include "snapshotter/layout.h"
#include "snapshotter/snapshot_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

// Whether a committed layer's files differ from the usage recorded at its
// commit. The inode count is exact; the size is compared loosely, because
// st_blocks of freshly written files still changes as the filesystem
// allocates them at writeback (ext4's delayed allocation with 1 KiB blocks
// adds extent blocks later), so a healthy layer can differ by a few blocks.
bool UsageDrifted(const metadata::Usage& recorded,
                  const metadata::Usage& measured) {
  if (recorded.size < 0 || recorded.inodes != measured.inodes) return true;
  const int64_t tolerance = std::max<int64_t>(64 << 10, measured.size / 1000);
  return std::abs(recorded.size - measured.size) > tolerance;
}

using metadata::Finding;
using metadata::Kind;

enum class Entry { kMissing, kDirectory, kOther };

Entry EntryAt(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return Entry::kMissing;
  return S_ISDIR(st.st_mode) ? Entry::kDirectory : Entry::kOther;
}

// A repair step, run only with --repair, after the metadata repair.
struct Step {
  size_t finding;
  std::function<absl::Status()> run;
};

}  // namespace

int FsckReport::repaired_count() const {
  return static_cast<int>(std::count(repaired.begin(), repaired.end(), true));
}

absl::StatusOr<FsckReport> Fsck(const FsckOptions& options) {
  Layout layout(options.root);
  struct stat root_st;
  if (lstat(layout.Root().c_str(), &root_st) != 0) {
    return fs::ErrnoStatus(errno, absl::StrCat("root ", layout.Root()));
  }
  if (S_ISLNK(root_st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", layout.Root(), " is a symlink; give the real path"));
  }
  if (EntryAt(layout.MetadataDir()) != Entry::kDirectory) {
    return absl::NotFoundError(
        absl::StrCat("root ", layout.Root(),
                     " has no metadata directory: not a cpp-overlay root"));
  }
  // A check only reads: it then also works on a read-only or full disk.
  metadata::StoreOptions store_options;
  store_options.read_only = !options.repair;
  absl::StatusOr<std::unique_ptr<metadata::SnapshotStore>> store =
      metadata::SnapshotStore::Open(layout.MetadataDir(), store_options);
  if (!store.ok()) {
    if (absl::IsUnavailable(store.status())) {
      return absl::UnavailableError(
          absl::StrCat("root ", layout.Root(),
                       " is in use by a running daemon; stop it first (",
                       store.status().message(), ")"));
    }
    return store.status();
  }
  absl::StatusOr<metadata::StoreDump> dump = (*store)->Dump();
  if (!dump.ok()) return dump.status();

  metadata::StoreCheck check = metadata::CheckStore(*dump);
  FsckReport report;
  report.snapshots = static_cast<int>(dump->records.size());
  report.findings = std::move(check.findings);
  std::vector<Step> steps;
  // Metadata findings with a repair are all fixed by the one batch below.
  std::vector<size_t> metadata_repairs;
  // (bad-usage of a committed snapshot is fixed by the usage-drift its
  // measurement below always finds.)
  for (size_t i = 0; i < report.findings.size(); ++i) {
    if (!report.findings[i].repair.empty()) metadata_repairs.push_back(i);
  }
  auto add = [&report](std::string kind, std::string object, std::string detail,
                       std::string repair = "") {
    report.findings.push_back({std::move(kind), std::move(object),
                               std::move(detail), std::move(repair)});
    return report.findings.size() - 1;
  };

  if (root_st.st_uid != geteuid()) {
    add("root-permissions", absl::StrCat("root ", layout.Root()),
        absl::StrCat("owned by uid ", root_st.st_uid, ", not by us (uid ",
                     geteuid(), ")"));
  } else if ((root_st.st_mode & 07777) != kRootMode) {
    size_t f = add("root-permissions", absl::StrCat("root ", layout.Root()),
                   absl::StrFormat("mode %04o", root_st.st_mode & 07777),
                   "chmod 0700");
    std::string root = layout.Root();
    steps.push_back({f, [root] { return fs::Chmod(root, kRootMode); }});
  }

  // Per record: its directory tree, and the usage of committed ones.
  absl::flat_hash_map<uint64_t, const metadata::Snapshot*> known;
  // A record that cannot be decoded still owns its directory: its id is
  // known from the id index, or else no stray directory is safe to remove.
  absl::flat_hash_set<uint64_t> corrupt_ids;
  int corrupt_records_without_id = 0;
  {
    absl::flat_hash_map<std::string, uint64_t> id_of_key;
    for (const auto& [id, key] : dump->ids) id_of_key[key] = id;
    for (const metadata::StoreDump::Record& record : dump->records) {
      if (record.snapshot.ok()) continue;
      auto it = id_of_key.find(record.key);
      if (it != id_of_key.end()) {
        corrupt_ids.insert(it->second);
      } else {
        ++corrupt_records_without_id;
      }
    }
  }
  for (const metadata::StoreDump::Record& record : dump->records) {
    if (!record.snapshot.ok()) continue;
    const metadata::Snapshot& s = *record.snapshot;
    known[s.id] = &s;
    const std::string object =
        absl::StrCat("snapshot ", metadata::QuoteKey(record.key));
    const std::string dir = layout.SnapshotDir(s.id);
    const std::string fs_dir = layout.FsDir(s.id);
    const bool view = s.info.kind == Kind::kView;
    Entry dir_entry = EntryAt(dir);
    Entry fs_entry = EntryAt(fs_dir);
    if (dir_entry == Entry::kOther || fs_entry == Entry::kOther) {
      add("not-a-directory", object,
          absl::StrCat(dir_entry == Entry::kOther ? dir : fs_dir,
                       " is not a directory"));
      continue;
    }
    if (dir_entry == Entry::kMissing || fs_entry == Entry::kMissing) {
      const bool whole = dir_entry == Entry::kMissing;
      // An empty view is a full view. An active snapshot's tree is what
      // start-up makes again (a power cut can lose a fresh one, whole or in
      // part): the same here. A committed layer's files cannot be made up.
      const bool remake = s.info.kind != Kind::kCommitted;
      size_t f =
          add(whole ? "missing-directory" : "missing-fs", object,
              absl::StrCat(whole ? dir : fs_dir, " of ", KindName(s.info.kind),
                           " snapshot ", s.id, " is missing",
                           view     ? ""
                           : remake ? ": files written to it, if any, are lost"
                                    : ": its files are lost; remove the "
                                      "snapshot through containerd"),
              remake ? "make it again, empty (as start-up does)" : "");
      if (remake) {
        const Kind kind = s.info.kind;
        const std::optional<uint64_t> parent_id = s.parent_id();
        steps.push_back({f, [layout, id = s.id, kind, parent_id] {
                           return RemakeLostSnapshotDir(layout, id, kind, parent_id);
                         }});
      }
      continue;
    }
    if (s.info.kind == Kind::kActive) {
      const std::string work = layout.WorkDir(s.id);
      Entry work_entry = EntryAt(work);
      if (work_entry == Entry::kOther) {
        add("not-a-directory", object,
            absl::StrCat(work, " is not a directory"));
      } else if (work_entry == Entry::kMissing) {
        size_t f =
            add("missing-work", object, absl::StrCat(work, " is missing"),
                "make it again, empty");
        steps.push_back({f, [layout, id = s.id, parent_id = s.parent_id()] {
                           return RemakeLostSnapshotDir(layout, id, Kind::kActive, parent_id);
                         }});
      }
    }
    if (s.info.kind == Kind::kCommitted) {
      absl::StatusOr<metadata::Usage> measured = DiskUsage(fs_dir);
      if (!measured.ok()) return measured.status();
      if (UsageDrifted(s.usage, *measured)) {
        size_t f =
            add("usage-drift", object,
                absl::StrCat("recorded size ", s.usage.size, ", inodes ",
                             s.usage.inodes, "; files have size ",
                             measured->size, ", inodes ", measured->inodes),
                "record the measured usage");
        metadata::Snapshot fixed = s;
        fixed.usage = *measured;
        check.repair.put_records.push_back(std::move(fixed));
        metadata_repairs.push_back(f);
      }
    }
  }

  // Entries under snapshots/ that no record owns.
  if (EntryAt(layout.SnapshotsDir()) == Entry::kDirectory) {
    absl::StatusOr<std::vector<std::string>> entries =
        fs::ListDir(layout.SnapshotsDir());
    if (!entries.ok()) return entries.status();
    std::sort(entries->begin(), entries->end());
    for (const std::string& entry : *entries) {
      std::optional<uint64_t> id = Layout::IdOfEntry(entry);
      const bool final_name = id && entry == std::to_string(*id);
      if (final_name && known.contains(*id)) continue;
      const std::string path = absl::StrCat(layout.SnapshotsDir(), "/", entry);
      size_t f;
      if (final_name && corrupt_ids.contains(*id)) {
        continue;  // its record's corrupt-record finding stands for it
      }
      if (final_name && corrupt_records_without_id > 0) {
        add("stray-directory", path,
            "no snapshot has this id, but a corrupt record whose id is "
            "unknown may own it: kept");
        continue;
      }
      if (final_name) {
        f = add("stray-directory", path, "no snapshot has this id",
                "remove it");
      } else if (id) {
        f = add("temporary-leftover", path, "a create that did not finish",
                "remove it");
      } else {
        f = add("unknown-entry", path, "not a snapshot directory", "remove it");
      }
      steps.push_back({f, [path] { return fs::RemoveAll(path); }});
    }
  } else {
    add("missing-directory", layout.SnapshotsDir(),
        "the snapshots directory is missing", "make it again");
    std::string dir = layout.SnapshotsDir();
    steps.push_back({report.findings.size() - 1,
                     [dir] { return fs::MakeDir(dir, kSnapshotDirMode); }});
  }

  report.repaired.assign(report.findings.size(), false);
  if (!options.repair) return report;
  if (!check.repair.empty()) {
    if (absl::Status s = (*store)->ApplyRepair(check.repair); !s.ok()) return s;
  }
  for (size_t f : metadata_repairs) report.repaired[f] = true;
  for (const Step& step : steps) {
    if (absl::Status s = step.run(); !s.ok()) return s;
    report.repaired[step.finding] = true;
  }
  if (!steps.empty()) {
    if (absl::Status s = fs::SyncDir(layout.SnapshotsDir()); !s.ok()) return s;
  }
  return report;
}

}  // namespace cpp_overlay::snapshotter
