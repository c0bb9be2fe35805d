// The daemon's logging: spdlog to stderr, as text or as JSON lines, with
// gRPC's own log lines routed through the same logger.
//
// A JSON line is one object: {"time":"2024-05-01T12:00:00.123456Z",
// "level":"info","logger":"cpp-overlay","msg":"..."}; bytes that are not
// UTF-8 become U+FFFD so every line parses.
#ifndef CPP_OVERLAY_SERVER_LOGGING_H_
#define CPP_OVERLAY_SERVER_LOGGING_H_

#include <memory>
#include <string>

#include "spdlog/formatter.h"

namespace cpp_overlay::server {

// Makes a stderr logger named "cpp-overlay" the default one, at `level`
// (trace ... critical) in `format` ("text" or "json"); both already
// validated (ValidateConfig). Also sends gRPC's log lines to it.
void SetUpLogging(const std::string& level, const std::string& format);

// The formatter behind `format = "json"`.
std::unique_ptr<spdlog::formatter> NewJsonFormatter();

// `s` as the body of a JSON string (without the quotes).
std::string JsonEscape(const std::string& s);

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_LOGGING_H_
