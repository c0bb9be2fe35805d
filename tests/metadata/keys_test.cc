#include "metadata/keys.h"

#include "gtest/gtest.h"

namespace cpp_overlay::metadata::keys {
namespace {

TEST(KeysTest, IdsEncodeBigEndianSoTheySortNumerically) {
  EXPECT_LT(Id(9), Id(10));
  EXPECT_LT(Id(255), Id(256));
  EXPECT_EQ(EncodeId(0x0102030405060708ull), std::string("\1\2\3\4\5\6\7\x08", 8));
  EXPECT_EQ(DecodeId(EncodeId(123456789)), 123456789u);
  EXPECT_EQ(DecodeId("short"), std::nullopt);
}

TEST(KeysTest, ChildKeysRoundTripAndShareTheParentPrefix) {
  std::string child = Child(7, 42);
  EXPECT_EQ(ParentIdOf(child), 7u);
  EXPECT_EQ(ChildIdOf(child), 42u);
  EXPECT_EQ(child.rfind(ChildrenOf(7), 0), 0u);
  EXPECT_NE(child.rfind(ChildrenOf(8), 0), 0u);
}

TEST(KeysTest, SnapshotKeysAreOpaqueBytes) {
  const std::string key("x/../y\0z", 8);
  EXPECT_EQ(SnapshotKeyOf(Snapshot(key)), key);
  EXPECT_EQ(SnapshotKeyOf(Id(1)), std::nullopt);
  EXPECT_EQ(IdOf(Id(99)), 99u);
  EXPECT_EQ(IdOf(Snapshot("k")), std::nullopt);
}

}  // namespace
}  // namespace cpp_overlay::metadata::keys
