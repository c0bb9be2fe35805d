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

namespace {

std::string EncodeLength(size_t n) {
  const auto v = static_cast<uint32_t>(n);
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

// Reads a 4-byte big-endian length and that many bytes from the front of
// `in`; nullopt when `in` is too short.
std::optional<absl::string_view> TakeLengthPrefixed(absl::string_view& in) {
  if (in.size() < 4) return std::nullopt;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  if (in.size() < n) return std::nullopt;
  absl::string_view out = in.substr(0, n);
  in.remove_prefix(n);
  return out;
}

}  // namespace

std::string LabelKeyPrefix(absl::string_view key) {
  return absl::StrCat(kLabelPrefix, EncodeLength(key.size()), key);
}

std::string LabelValuePrefix(absl::string_view key, absl::string_view value) {
  return absl::StrCat(LabelKeyPrefix(key), EncodeLength(value.size()), value);
}

std::string Label(absl::string_view key, absl::string_view value, uint64_t id) {
  return absl::StrCat(LabelValuePrefix(key, value), EncodeId(id));
}

std::optional<LabelEntry> LabelEntryOf(absl::string_view db_key) {
  if (!absl::StartsWith(db_key, kLabelPrefix)) return std::nullopt;
  absl::string_view rest = db_key.substr(kLabelPrefix.size());
  std::optional<absl::string_view> key = TakeLengthPrefixed(rest);
  if (!key) return std::nullopt;
  std::optional<absl::string_view> value = TakeLengthPrefixed(rest);
  if (!value) return std::nullopt;
  std::optional<uint64_t> id = DecodeId(rest);
  if (!id) return std::nullopt;
  return LabelEntry{*key, *value, *id};
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
