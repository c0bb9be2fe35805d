// gMock matchers and macros for absl::Status / StatusOr.
#ifndef CPP_OVERLAY_TESTS_TESTING_STATUS_MATCHERS_H_
#define CPP_OVERLAY_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace cpp_overlay::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(StatusIs, code,
          "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

}  // namespace cpp_overlay::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::cpp_overlay::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::cpp_overlay::testing::IsOk())

#endif  // CPP_OVERLAY_TESTS_TESTING_STATUS_MATCHERS_H_
