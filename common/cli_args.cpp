#include "common/cli_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace tapestry::common {

uint64_t parseCountArg(const std::string& flag, const std::string& text, uint64_t min) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] < '0' || text[0] > '9' || *end != '\0' || errno == ERANGE || v < min)
    throw UsageError(flag + " takes a whole number >= " + std::to_string(min) + ", not '" + text + "'");
  return v;
}

double parseRealArg(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) throw UsageError(flag + " takes a number, not '" + text + "'");
  return v;
}

double parsePositiveArg(const std::string& flag, const std::string& text) {
  const double v = parseRealArg(flag, text);
  if (!(v > 0)) throw UsageError(flag + " takes a number > 0, not '" + text + "'");
  return v;
}

}  // namespace tapestry::common
