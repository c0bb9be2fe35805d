#include "metadata/labels.h"

#include <iterator>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace cpp_overlay::metadata {
namespace {

using ::cpp_overlay::testing::StatusIs;

struct UpdateCase {
  const char* name;
  Labels current;
  Labels update;
  std::vector<std::string> paths;
  Labels want;
};

class LabelUpdateTest : public ::testing::TestWithParam<UpdateCase> {};

TEST_P(LabelUpdateTest, AppliesContainerdSemantics) {
  const UpdateCase& c = GetParam();
  auto got = ApplyLabelUpdate(c.current, c.update, c.paths, "key");
  ASSERT_OK(got);
  EXPECT_EQ(*got, c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LabelUpdateTest,
    ::testing::Values(
        UpdateCase{"EmptyMaskReplacesAll", {{"a", "1"}}, {{"b", "2"}}, {}, {{"b", "2"}}},
        UpdateCase{"LabelsPathReplacesAll", {{"a", "1"}}, {{"b", "2"}}, {"labels"}, {{"b", "2"}}},
        UpdateCase{"LabelPathSetsOne", {{"a", "1"}}, {{"b", "2"}, {"c", "3"}}, {"labels.b"},
                   {{"a", "1"}, {"b", "2"}}},
        UpdateCase{"LabelPathWithEmptyValueDeletes", {{"a", "1"}, {"b", "2"}}, {{"b", ""}},
                   {"labels.b"}, {{"a", "1"}}},
        UpdateCase{"LabelPathMissingFromUpdateDeletes", {{"a", "1"}}, {}, {"labels.a"}, {}},
        UpdateCase{"DottedLabelKey", {}, {{"containerd.io/snapshot.ref", "x"}},
                   {"labels.containerd.io/snapshot.ref"}, {{"containerd.io/snapshot.ref", "x"}}},
        UpdateCase{"EmptyValuesAreDropped", {}, {{"a", ""}, {"b", "1"}}, {}, {{"b", "1"}}}),
    [](const ::testing::TestParamInfo<UpdateCase>& info) { return info.param.name; });

TEST(LabelUpdateTest, OtherPathsAreInvalidArgument) {
  for (const char* path : {"name", "parent", "kind", "labelsx", "info.labels"}) {
    EXPECT_THAT(ApplyLabelUpdate({}, {}, {path}, "k"),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << path;
  }
}

TEST(ValidateLabelsTest, KeyPlusValueOver4096IsInvalidArgument) {
  EXPECT_OK(ValidateLabels({{"k", std::string(4095, 'v')}}));
  EXPECT_THAT(ValidateLabels({{"k", std::string(4096, 'v')}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateLabels({{std::string(4097, 'k'), ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateLabelsTest, EmptyKeyIsInvalidArgument) {
  EXPECT_THAT(ValidateLabels({{"", "v"}}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StoredLabelsTest, DropsEmptyValuesBeforeValidating) {
  auto stored = StoredLabels({{"", ""}, {"a", ""}, {"b", "1"}});
  ASSERT_OK(stored);
  EXPECT_EQ(*stored, (Labels{{"b", "1"}}));
  EXPECT_THAT(StoredLabels({{"", "v"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StoredLabels({{"k", std::string(4096, 'v')}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// containerd's metadata checks every label it is given before bolt drops
// the empty ones, so an oversized key is refused even with no value.
TEST(StoredLabelsTest, AnOversizedKeyWithNoValueIsRefusedNotDropped) {
  EXPECT_THAT(StoredLabels({{std::string(4097, 'k'), ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ApplyLabelUpdate({{"a", "1"}}, {},
                               {"labels." + std::string(4097, 'k')}, "key"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ApplyLabelUpdate({{"a", "1"}}, {{std::string(4097, 'k'), ""}}, {}, "key"),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateInfoSizeTest, AnInfoTooLargeToBeReadBackIsInvalidArgument) {
  Info info;
  info.name = "snapshot";
  // 4,200 labels of about 4,000 bytes: over 16.8 MB; 4,000 of them fit.
  for (int i = 0; i < 4200; ++i) {
    info.labels.emplace(absl::StrCat("k", i), std::string(3990, 'v'));
  }
  absl::Status refused = ValidateInfoSize(info);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(refused.message()),
              ::testing::HasSubstr("4200 labels"));
  info.labels.erase(info.labels.begin(), std::next(info.labels.begin(), 200));
  EXPECT_OK(ValidateInfoSize(info));
}

}  // namespace
}  // namespace cpp_overlay::metadata
