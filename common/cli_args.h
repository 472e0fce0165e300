#pragma once
// Parsing of command-line option values for the tools' subcommands, with
// messages that name the option and what it takes. UsageError is caught by
// each command, which prints it with its usage text and exits with 2.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tapestry::common {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A whole number >= min ("--workers takes a whole number >= 1, not 'x'").
uint64_t parseCountArg(const std::string& flag, const std::string& text, uint64_t min = 0);
// A finite number.
double parseRealArg(const std::string& flag, const std::string& text);
// A finite number > 0.
double parsePositiveArg(const std::string& flag, const std::string& text);

}  // namespace tapestry::common
