#pragma once
// Entry points of the CUDA backend, in plain C++ so that the factory can
// include them without CUDA headers. Only built when nvcc was found.
#include <memory>
#include <string>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {

// Throws std::runtime_error naming the failing CUDA call when setup fails.
std::unique_ptr<Aggregator> makeCudaAggregator();

// True when the CUDA runtime sees at least one device; otherwise `reason`
// (if given) says why.
bool cudaDevicePresent(std::string* reason);

}  // namespace tapestry::coordinator
