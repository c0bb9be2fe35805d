#include "server/version.h"

#ifndef CPP_OVERLAY_VERSION
#define CPP_OVERLAY_VERSION "dev"
#endif

namespace cpp_overlay::server {

const char* Version() { return CPP_OVERLAY_VERSION; }

}  // namespace cpp_overlay::server
