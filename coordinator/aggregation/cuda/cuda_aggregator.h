#pragma once
// Entry points of the CUDA backend, in plain C++ so that the factory can
// include them without CUDA headers. Only built when nvcc was found.
#include <cstddef>
#include <memory>
#include <string>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {

// Throws std::runtime_error naming the failing CUDA call when setup fails.
std::unique_ptr<Aggregator> makeCudaAggregator();

// True when the CUDA runtime sees at least one device; otherwise `reason`
// (if given) says why.
bool cudaDevicePresent(std::string* reason);

// Seconds for `repeats` cudaMemcpy device-to-device copies of `bytes`.
double cudaCopySeconds(size_t bytes, unsigned repeats);

}  // namespace tapestry::coordinator
