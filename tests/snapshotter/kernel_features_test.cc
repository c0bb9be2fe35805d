#include "snapshotter/kernel_features.h"

#include <string>

#include "gtest/gtest.h"

namespace cpp_overlay::snapshotter {
namespace {

TEST(KernelFeaturesTest, OnlyTheFullIdentityMapIsTheInitialUserNamespace) {
  EXPECT_TRUE(IsInitialUidMap("         0          0 4294967295"));
  EXPECT_FALSE(IsInitialUidMap("         0       1000          1"));
  EXPECT_FALSE(IsInitialUidMap("         0          0          1"));  // unshare -r as root
  EXPECT_FALSE(IsInitialUidMap("         0     100000      65536"));
  EXPECT_FALSE(IsInitialUidMap(""));
}

TEST(KernelFeaturesTest, KernelReleasesCompareByMajorAndMinor) {
  EXPECT_TRUE(KernelAtLeast("5.11.0", 5, 11));
  EXPECT_TRUE(KernelAtLeast("6.1.0-18-amd64", 5, 11));
  EXPECT_TRUE(KernelAtLeast("5.12-rc1", 5, 11));
  EXPECT_TRUE(KernelAtLeast("6.18.44-fc-v782", 5, 11));
  EXPECT_FALSE(KernelAtLeast("5.10.0-28-amd64", 5, 11));
  EXPECT_FALSE(KernelAtLeast("4.19.0", 5, 11));
  EXPECT_FALSE(KernelAtLeast("garbage", 5, 11));
  EXPECT_FALSE(KernelAtLeast("", 5, 11));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
