// Write-ahead log files whose space is written out before the log uses it.
//
// A synced append to a growing file makes fdatasync commit the filesystem
// journal (the file size and block allocation change), which costs several
// device flushes. Overwriting blocks that are already allocated and written
// leaves nothing for the journal: fdatasync is one data write and one flush.
// So each new WAL file is filled with zeros up front (one synced write per
// memtable, not per record) and RocksDB's records then overwrite the zeros.
//
// Recovery reads the zero tail as padding (RocksDB's log reader skips
// zero-type records, which is how it has always read preallocated logs), so
// a crash at any point loses nothing that was synced. RocksDB's own
// recycle_log_file_num would do the same but is disabled by RocksDB with
// point-in-time recovery, which we keep.
#ifndef CPP_OVERLAY_METADATA_PREALLOCATED_WAL_H_
#define CPP_OVERLAY_METADATA_PREALLOCATED_WAL_H_

#include <cstdint>
#include <memory>

#include "rocksdb/file_system.h"

namespace cpp_overlay::metadata {

// Wraps `base`: files named like RocksDB's write-ahead logs (`NNNNNN.log`)
// are made with `chunk_bytes` of written-out zeros ahead of the writer, in
// chunks; everything else goes to `base` unchanged.
std::shared_ptr<rocksdb::FileSystem> NewPreallocatedWalFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, uint64_t chunk_bytes);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_PREALLOCATED_WAL_H_
