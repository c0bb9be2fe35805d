// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object goes away, even when the test failed.
#ifndef CPP_OVERLAY_TESTS_TESTING_TEMP_DIR_H_
#define CPP_OVERLAY_TESTS_TESTING_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace cpp_overlay::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/cpp-overlay-test-XXXXXX";
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_TESTING_TEMP_DIR_H_
