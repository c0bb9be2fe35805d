// containerd's List/Walk filter syntax, parsed once and matched against Info.
//
// Grammar (containerd filters package): a filter is selectors joined by ','
// (AND); a selector is <fieldpath>[<op><value>] with op one of ==, !=, ~=
// (RE2 regexp, same syntax as Go's regexp). A bare fieldpath means "field is
// present". Field path parts are separated by '.', and may be quoted with
// "..."; values may be bare or quoted with "..." (and, for ~= only, /.../ or
// |...|). Several filters are ORed; no filter at all, or an empty filter
// string among them, matches everything. Unlike containerd, a regexp that
// does not compile is rejected at parse time instead of never matching, and
// one Parse takes at most 64 regexps, sharing 64 MiB of compiled program.
// Fields: name, parent, kind (view|active|committed), labels.<key> where the
// key is the rest of the path joined with '.'.
#ifndef CPP_OVERLAY_METADATA_FILTERS_H_
#define CPP_OVERLAY_METADATA_FILTERS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metadata/types.h"

namespace cpp_overlay::metadata {

// A parsed, immutable, thread-safe set of filters.
class Filter {
 public:
  // InvalidArgument on a syntax error or a bad regexp, naming the filter.
  static absl::StatusOr<Filter> Parse(const std::vector<std::string>& filters);

  // True when `info` matches any of the filters (or there are none).
  bool Matches(const Info& info) const;

  // True when there are no filters, so everything matches.
  bool MatchesAll() const;

  // A label test one alternative requires: label `key` present, with
  // exactly `value` when set.
  struct LabelLookup {
    std::string key;
    std::optional<std::string> value;
  };
  // One lookup per alternative, so the snapshots found by all of them
  // (through the label index) include every match; Matches still decides.
  // nullopt when some alternative requires no label, or everything
  // matches: then only a full scan finds the matches.
  std::optional<std::vector<LabelLookup>> LabelLookups() const;

  Filter(Filter&&) = default;
  Filter& operator=(Filter&&) = default;
  ~Filter();

 private:
  struct Impl;
  explicit Filter(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_FILTERS_H_
