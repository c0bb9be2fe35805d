// The daemon's version, set by the build (CMake's project version).
#ifndef CPP_OVERLAY_SERVER_VERSION_H_
#define CPP_OVERLAY_SERVER_VERSION_H_

namespace cpp_overlay::server {

// e.g. "0.1.0"; "dev" when the build did not say.
const char* Version();

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_VERSION_H_
