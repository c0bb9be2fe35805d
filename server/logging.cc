#include "server/logging.h"

#include <time.h>

#include <chrono>
#include <cstdio>

#include "grpc/support/log.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t Utf8Length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    const auto since_epoch = msg.time.time_since_epoch();
    const time_t seconds = static_cast<time_t>(
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
    const long micros = static_cast<long>(
        duration_cast<microseconds>(since_epoch).count() % 1000000);
    tm utc;
    gmtime_r(&seconds, &utc);
    char time_text[64];
    std::snprintf(time_text, sizeof(time_text),
                  "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                  utc.tm_sec, micros);
    const spdlog::string_view_t level =
        spdlog::level::to_string_view(msg.level);
    std::string line = "{\"time\":\"";
    line += time_text;
    line += "\",\"level\":\"";
    line.append(level.data(), level.size());
    line += "\",\"logger\":\"";
    line +=
        JsonEscape(std::string(msg.logger_name.data(), msg.logger_name.size()));
    line += "\",\"msg\":\"";
    line += JsonEscape(std::string(msg.payload.data(), msg.payload.size()));
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// gRPC's gpr_log lines, through spdlog so they share the format.
void GrpcLogToSpdlog(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::info;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  spdlog::log(level, "grpc: {} ({}:{})", args->message, args->file, args->line);
}

}  // namespace

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else if (c >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(s, i, n);
      i += n;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

std::unique_ptr<spdlog::formatter> NewJsonFormatter() {
  return std::make_unique<JsonFormatter>();
}

void SetUpLogging(const std::string& level, const std::string& format) {
  std::shared_ptr<spdlog::logger> logger = spdlog::get("cpp-overlay");
  if (logger == nullptr) logger = spdlog::stderr_logger_mt("cpp-overlay");
  if (format == "json") logger->set_formatter(NewJsonFormatter());
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::trace);
  gpr_set_log_function(GrpcLogToSpdlog);
}

}  // namespace cpp_overlay::server
