#include "metadata/errors.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace cpp_overlay::metadata {
namespace {
constexpr size_t kMaxQuotedKey = 256;
}  // namespace

std::string QuoteText(absl::string_view text) {
  if (text.size() > kMaxQuotedKey) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxQuotedKey)),
                        "\"... (", text.size(), " bytes)");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

std::string QuoteKey(absl::string_view key) { return QuoteText(key); }

absl::Status SnapshotNotFound(absl::string_view key) {
  return absl::NotFoundError(
      absl::StrCat("snapshot ", QuoteKey(key), ": not found"));
}

absl::Status ParentNotFound(absl::string_view key, absl::string_view parent) {
  return absl::NotFoundError(absl::StrCat("snapshot ", QuoteKey(key),
                                          ": parent ", QuoteKey(parent),
                                          ": not found"));
}

absl::Status SnapshotExists(absl::string_view key) {
  return absl::AlreadyExistsError(
      absl::StrCat("snapshot ", QuoteKey(key), ": already exists"));
}

absl::Status ParentNotCommitted(absl::string_view key, absl::string_view parent) {
  return absl::InvalidArgumentError(
      absl::StrCat("snapshot ", QuoteKey(key), ": parent ", QuoteKey(parent),
                   " is not committed: invalid argument"));
}

absl::Status WrongKind(absl::string_view key, absl::string_view operation,
                       absl::string_view detail) {
  return absl::FailedPreconditionError(absl::StrCat(
      operation, " snapshot ", QuoteKey(key), ": ", detail,
      ": failed precondition"));
}

absl::Status HasChildren(absl::string_view key) {
  return absl::FailedPreconditionError(
      absl::StrCat("remove snapshot ", QuoteKey(key),
                   ": cannot remove snapshot with child: failed precondition"));
}

absl::Status InvalidRequest(absl::string_view detail) {
  return absl::InvalidArgumentError(
      absl::StrCat(detail, ": invalid argument"));
}

}  // namespace cpp_overlay::metadata
