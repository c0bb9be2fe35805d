#include "metadata/keys.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cpp_overlay::metadata::keys {

std::string EncodeId(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return out;
}

std::optional<uint64_t> DecodeId(absl::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t id = 0;
  for (unsigned char c : bytes) id = (id << 8) | c;
  return id;
}

std::string Snapshot(absl::string_view key) {
  return absl::StrCat(kSnapshotPrefix, key);
}

std::string Id(uint64_t id) { return absl::StrCat(kIdPrefix, EncodeId(id)); }

std::string Child(uint64_t parent_id, uint64_t child_id) {
  return absl::StrCat(kChildPrefix, EncodeId(parent_id), EncodeId(child_id));
}

std::string ChildrenOf(uint64_t parent_id) {
  return absl::StrCat(kChildPrefix, EncodeId(parent_id));
}

std::optional<absl::string_view> SnapshotKeyOf(absl::string_view db_key) {
  if (!absl::StartsWith(db_key, kSnapshotPrefix)) return std::nullopt;
  return db_key.substr(kSnapshotPrefix.size());
}

std::optional<uint64_t> IdOf(absl::string_view db_key) {
  if (!absl::StartsWith(db_key, kIdPrefix)) return std::nullopt;
  return DecodeId(db_key.substr(kIdPrefix.size()));
}

std::optional<uint64_t> ParentIdOf(absl::string_view db_key) {
  if (!absl::StartsWith(db_key, kChildPrefix) ||
      db_key.size() != kChildPrefix.size() + 16) {
    return std::nullopt;
  }
  return DecodeId(db_key.substr(kChildPrefix.size(), 8));
}

std::optional<uint64_t> ChildIdOf(absl::string_view db_key) {
  if (!absl::StartsWith(db_key, kChildPrefix) ||
      db_key.size() != kChildPrefix.size() + 16) {
    return std::nullopt;
  }
  return DecodeId(db_key.substr(kChildPrefix.size() + 8, 8));
}

}  // namespace cpp_overlay::metadata::keys
