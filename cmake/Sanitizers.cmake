# Sanitizer and fuzzing builds. Include from the top-level CMakeLists.txt
# after add_compile_options and before the first add_subdirectory, so every
# target (libraries, daemon, tests) is built the same way:
#
#   -DCPP_OVERLAY_SANITIZE=address,undefined   ASan + UBSan (gcc or clang)
#   -DCPP_OVERLAY_SANITIZE=thread              TSan
#   -DCPP_OVERLAY_FUZZ=ON                      libFuzzer targets (clang only;
#                                              combine with address,undefined)
#
# Debian's gRPC, Protobuf, Abseil and RocksDB are not instrumented: ASan and
# UBSan see our code and every allocation; TSan sees our code and what goes
# through pthread (scripts/test-sanitizers.sh runs it on the concurrency
# tests only, with tests/sanitizers/tsan.supp for the uninstrumented
# libraries).

set(CPP_OVERLAY_SANITIZE "" CACHE STRING
    "Sanitizers to build with: empty, address,undefined or thread")
option(CPP_OVERLAY_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

if(CPP_OVERLAY_SANITIZE)
  if(CPP_OVERLAY_SANITIZE MATCHES "thread" AND CPP_OVERLAY_SANITIZE MATCHES "address")
    message(FATAL_ERROR "CPP_OVERLAY_SANITIZE: thread cannot be combined with address")
  endif()
  set(_cpp_overlay_sanitize_flags
      -fsanitize=${CPP_OVERLAY_SANITIZE} -fno-omit-frame-pointer -g)
  if(CPP_OVERLAY_SANITIZE MATCHES "undefined")
    # A finding fails the test instead of printing and going on.
    list(APPEND _cpp_overlay_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_cpp_overlay_sanitize_flags})
  add_link_options(-fsanitize=${CPP_OVERLAY_SANITIZE})
  message(STATUS "cpp-overlay: building with -fsanitize=${CPP_OVERLAY_SANITIZE}")
endif()

if(CPP_OVERLAY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CPP_OVERLAY_FUZZ needs clang: "
                        "-DCMAKE_CXX_COMPILER=clang++ (Debian's clang, libclang-rt-14-dev)")
  endif()
  # Coverage for the fuzzer in every library; only fuzz targets link the
  # libFuzzer main (-fsanitize=fuzzer), see tests/fuzz/CMakeLists.txt.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
