#pragma once
// Line-oriented logging to stderr: UTC time, the component ("coordinator",
// "worker hospital-a"), then the message. One mutex, whole lines only, so
// several threads and processes sharing a terminal stay readable.
#include <sstream>
#include <string>

namespace tapestry::common {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void setLogComponent(std::string component);
void setLogLevel(LogLevel level);
void logLine(LogLevel level, const std::string& message);

}  // namespace tapestry::common

#define TAPESTRY_LOG(level, expr)                                   \
  do {                                                              \
    std::ostringstream tapestry_log_stream_;                        \
    tapestry_log_stream_ << expr;                                   \
    ::tapestry::common::logLine(level, tapestry_log_stream_.str()); \
  } while (0)
#define LOG_INFO(expr) TAPESTRY_LOG(::tapestry::common::LogLevel::kInfo, expr)
#define LOG_WARN(expr) TAPESTRY_LOG(::tapestry::common::LogLevel::kWarn, expr)
#define LOG_ERROR(expr) TAPESTRY_LOG(::tapestry::common::LogLevel::kError, expr)
#define LOG_DEBUG(expr) TAPESTRY_LOG(::tapestry::common::LogLevel::kDebug, expr)
