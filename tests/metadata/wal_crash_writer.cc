// Creates snapshots key-0..key-<count-1>, each with one label of
// <label bytes> bytes, in the metadata store at <db>, then exits without
// closing it, as a killed daemon would: the logs keep their zero tails.
//
// preallocated_wal_test runs this instead of forking itself: a forked
// child of a process whose RocksDB already started its background threads
// has none of them, and its first memtable flush would wait forever.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "metadata/snapshot_store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB COUNT LABEL_BYTES\n", argv[0]);
    return 2;
  }
  const int count = std::atoi(argv[2]);
  const std::string label(static_cast<size_t>(std::atoi(argv[3])), 'v');
  auto store = cpp_overlay::metadata::SnapshotStore::Open(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  for (int i = 0; i < count; ++i) {
    auto created = (*store)->Create(
        cpp_overlay::metadata::Kind::kActive, absl::StrCat("key-", i), "",
        {{"containerd.io/snapshot/x", label}}, (*store)->ReserveId());
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
  }
  _exit(0);  // no close
}
