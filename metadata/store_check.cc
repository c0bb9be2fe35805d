#include "metadata/store_check.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "metadata/errors.h"

namespace cpp_overlay::metadata {
namespace {

std::string SnapshotObject(absl::string_view key) {
  return absl::StrCat("snapshot ", QuoteKey(key));
}

std::string IdsString(const std::vector<uint64_t>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, " "), "]");
}

}  // namespace

StoreCheck CheckStore(const StoreDump& dump) {
  StoreCheck check;
  auto report = [&check](std::string kind, std::string object,
                         std::string detail, std::string repair = "") {
    check.findings.push_back({std::move(kind), std::move(object),
                              std::move(detail), std::move(repair)});
  };

  // Decodable records by key, and which keys claim each id.
  absl::flat_hash_map<std::string, const Snapshot*> by_key;
  absl::flat_hash_map<uint64_t, std::vector<const Snapshot*>> by_id;
  absl::flat_hash_set<std::string> corrupt_keys;
  uint64_t max_id = 0;
  for (const StoreDump::Record& record : dump.records) {
    if (!record.snapshot.ok()) {
      report("corrupt-record", SnapshotObject(record.key),
             std::string(record.snapshot.status().message()));
      corrupt_keys.insert(record.key);
      continue;
    }
    const Snapshot& s = *record.snapshot;
    by_key[record.key] = &s;
    by_id[s.id].push_back(&s);
    max_id = std::max(max_id, s.id);
    if (s.info.kind != Kind::kView && s.info.kind != Kind::kActive &&
        s.info.kind != Kind::kCommitted) {
      report("bad-kind", SnapshotObject(record.key),
             absl::StrCat("kind ", static_cast<int>(s.info.kind),
                          " is not view (1), active (2) or committed (3)"));
    }
  }
  for (const auto& [id, owners] : by_id) {
    if (owners.size() < 2) continue;
    std::vector<std::string> names;
    for (const Snapshot* s : owners) names.push_back(QuoteKey(s->info.name));
    report("duplicate-id", absl::StrCat("id ", id),
           absl::StrCat("claimed by ", absl::StrJoin(names, ", ")));
  }

  // Id index: exactly one "i/<id>" -> key per record.
  absl::flat_hash_map<uint64_t, std::string> id_index;
  for (const auto& [id, key] : dump.ids) {
    id_index[id] = key;
    max_id = std::max(max_id, id);
    auto it = by_key.find(key);
    if (it == by_key.end() || it->second->id != id) {
      if (by_id.contains(id)) continue;  // repaired below by a put
      // The only link from a corrupt record to its id (and directory).
      if (corrupt_keys.contains(key)) continue;
      report("stale-id-index", absl::StrCat("id ", id),
             absl::StrCat("names ", QuoteKey(key),
                          ", which is not a snapshot with this id"),
             "delete the index entry");
      check.repair.delete_ids.push_back(id);
    }
  }
  for (const auto& [key, s] : by_key) {
    auto it = id_index.find(s->id);
    if (it != id_index.end() && it->second == key) continue;
    if (by_id[s->id].size() > 1) continue;  // duplicate-id: nothing is safe
    report("missing-id-index", SnapshotObject(key),
           it == id_index.end() ? absl::StrCat("no index entry for id ", s->id)
                                : absl::StrCat("index entry for id ", s->id,
                                               " names ", QuoteKey(it->second)),
           "write the index entry");
    check.repair.put_ids.emplace_back(s->id, key);
  }

  // Parents, ancestors and the children index.
  std::set<std::pair<uint64_t, uint64_t>> expected_children;
  for (const auto& [key, s] : by_key) {
    if (s->info.parent.empty()) {
      if (!s->ancestor_ids.empty()) {
        report("ancestor-mismatch", SnapshotObject(key),
               absl::StrCat("no parent but ancestor ids ",
                            IdsString(s->ancestor_ids)));
      }
      continue;
    }
    auto p = by_key.find(s->info.parent);
    if (p == by_key.end()) {
      report(
          "dangling-parent", SnapshotObject(key),
          absl::StrCat("parent ", QuoteKey(s->info.parent), " does not exist"));
      continue;
    }
    const Snapshot& parent = *p->second;
    if (parent.info.kind != Kind::kCommitted) {
      report("parent-not-committed", SnapshotObject(key),
             absl::StrCat("parent ", QuoteKey(s->info.parent), " is ",
                          KindName(parent.info.kind)));
    }
    std::vector<uint64_t> chain = {parent.id};
    chain.insert(chain.end(), parent.ancestor_ids.begin(),
                 parent.ancestor_ids.end());
    if (chain != s->ancestor_ids) {
      report("ancestor-mismatch", SnapshotObject(key),
             absl::StrCat("ancestor ids ", IdsString(s->ancestor_ids),
                          ", parent chain ", IdsString(chain)));
    }
    expected_children.emplace(parent.id, s->id);
  }
  std::set<std::pair<uint64_t, uint64_t>> actual_children(dump.children.begin(),
                                                          dump.children.end());
  for (const auto& edge : expected_children) {
    if (actual_children.count(edge) != 0) continue;
    const Snapshot* child = by_id[edge.second].front();
    report("missing-child-index", SnapshotObject(child->info.name),
           absl::StrCat("no children index entry ", edge.first, " -> ",
                        edge.second, ": its parent could be removed under it"),
           "write the index entry");
    check.repair.put_children.push_back(edge);
  }
  for (const auto& edge : actual_children) {
    if (expected_children.count(edge) != 0) continue;
    report("stale-child-index",
           absl::StrCat("children index ", edge.first, " -> ", edge.second),
           "no snapshot with that id has that parent: its parent cannot be "
           "removed",
           "delete the index entry");
    check.repair.delete_children.push_back(edge);
  }

  // Label index: exactly one "l/" entry per label of each record, so
  // filtered Lists find what a full scan would.
  std::set<LabelIndexEntry> expected_labels;
  for (const auto& [key, s] : by_key) {
    if (by_id[s->id].size() > 1) continue;  // duplicate-id: nothing is safe
    for (const auto& [label, value] : s->info.labels) {
      expected_labels.insert({label, value, s->id, key});
    }
  }
  const std::set<LabelIndexEntry> actual_labels(dump.labels.begin(),
                                                dump.labels.end());
  auto label_entry_object = [](const LabelIndexEntry& e) {
    return absl::StrCat("label index entry \"", absl::CHexEscape(e.key), "\" of id ", e.id);
  };
  for (const LabelIndexEntry& e : expected_labels) {
    if (actual_labels.count(e) != 0) continue;
    report("missing-label-index", SnapshotObject(by_id[e.id].front()->info.name),
           absl::StrCat("no label index entry for label \"",
                        absl::CHexEscape(e.key), "\": filtered Lists miss it"),
           "write the index entry");
    check.repair.put_labels.push_back(e);
  }
  for (const LabelIndexEntry& e : actual_labels) {
    if (auto expected = expected_labels.find(e); expected != expected_labels.end()) {
      if (e.snapshot == expected->snapshot) continue;
      // Walk still finds it through the id index, one lookup slower.
      report("stale-label-index", label_entry_object(e),
             absl::StrCat("names ", QuoteKey(e.snapshot), " instead of ",
                          QuoteKey(expected->snapshot)),
             "write the index entry");
      check.repair.put_labels.push_back(*expected);
      continue;
    }
    const auto owner = by_id.find(e.id);
    if (owner != by_id.end() && owner->second.size() > 1) continue;
    report("stale-label-index", label_entry_object(e), "no snapshot with that id has that label",
           "delete the index entry");
    check.repair.delete_labels.push_back(e);
  }

  // The id counter: ids are never reused, so it must be above every id.
  // (A root that never had a snapshot has no counter yet.)
  if (dump.next_id ? *dump.next_id <= max_id : max_id > 0) {
    report("next-id-behind", "next id",
           dump.next_id
               ? absl::StrCat(*dump.next_id, " is not above id ", max_id)
               : std::string("missing"),
           absl::StrCat("set it to ", max_id + 1));
    check.repair.next_id = max_id + 1;
  }

  // Usage is recorded at Commit; other kinds carry none.
  for (const auto& [key, s] : by_key) {
    bool committed = s->info.kind == Kind::kCommitted;
    bool negative = s->usage.size < 0 || s->usage.inodes < 0;
    bool stray = !committed && (s->usage.size != 0 || s->usage.inodes != 0);
    if (!negative && !stray) continue;
    report("bad-usage", SnapshotObject(key),
           absl::StrCat("size ", s->usage.size, ", inodes ", s->usage.inodes,
                        " on a ", KindName(s->info.kind), " snapshot"),
           committed ? "measure it again" : "reset it to zero");
    if (!committed) {
      Snapshot fixed = *s;
      fixed.usage = Usage{};
      check.repair.put_records.push_back(std::move(fixed));
    }
    // Committed ones are re-measured by snapshotter/fsck.cc, which has the
    // files.
  }

  for (const std::string& key : dump.unknown_keys) {
    report("unknown-key",
           absl::StrCat("key \"", absl::CHexEscape(key.substr(0, 64)), "\""),
           "fits no known key layout");
  }
  return check;
}

}  // namespace cpp_overlay::metadata
