#pragma once
// Subcommands of the `tapestry` tool. Each takes the words after its name and
// returns a process exit code (0 ok, 1 failure, 2 usage); none throws.
#include <string>
#include <vector>

namespace tapestry::tools {

int runEvalCommand(const std::vector<std::string>& args);
int runDemoCommand(const std::vector<std::string>& args);
int runFingerprintCommand(const std::vector<std::string>& args);
int runStatusCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
