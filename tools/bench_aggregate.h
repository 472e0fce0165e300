#pragma once
// `tapestry bench aggregate`: aggregation throughput of every backend against
// the memory-bandwidth ceiling measured in the same run.
#include <string>
#include <vector>

namespace tapestry::tools {

// Takes the words after `bench aggregate`; returns 0 ok, 1 failure, 2 usage.
// Never throws.
int runBenchAggregateCommand(const std::vector<std::string>& args);

}  // namespace tapestry::tools
