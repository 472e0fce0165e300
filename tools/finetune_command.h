#pragma once
// `tapestry finetune`: a member adapts the open consensus model to its own
// data and sees what the federation bought it.
#include <string>
#include <vector>

namespace tapestry::tools {

// `args` are the words after "finetune". Returns 0, 1 (error, with its
// message) or 2 (usage, with the usage text); never throws.
int runFinetuneCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
