#include "server/sd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

void Notify(const std::string& state) {
  // 0: keep $NOTIFY_SOCKET so later notifications reach systemd too.
  int result = sd_notify(0, state.c_str());
  if (result < 0) {
    spdlog::warn("sd_notify {}: {}", state.substr(0, state.find('\n')),
                 std::strerror(-result));
  }
}

}  // namespace

void NotifyReady(const std::string& status) {
  Notify(absl::StrCat("READY=1\nSTATUS=", status));
}

void NotifyStopping(const std::string& status) {
  Notify(absl::StrCat("STOPPING=1\nSTATUS=", status));
}

void NotifyStatus(const std::string& status) {
  Notify(absl::StrCat("STATUS=", status));
}

}  // namespace cpp_overlay::server
