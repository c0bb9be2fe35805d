// systemd's notify protocol (Type=notify units): READY once the daemon
// serves, STOPPING when it begins to stop, STATUS for `systemctl status`.
// Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.
#ifndef CPP_OVERLAY_SERVER_SD_NOTIFY_H_
#define CPP_OVERLAY_SERVER_SD_NOTIFY_H_

#include <string>

namespace cpp_overlay::server {

// READY=1 with `status` as STATUS=.
void NotifyReady(const std::string& status);
// STOPPING=1 with `status` as STATUS=.
void NotifyStopping(const std::string& status);
// STATUS= alone, e.g. when health changes.
void NotifyStatus(const std::string& status);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_SD_NOTIFY_H_
