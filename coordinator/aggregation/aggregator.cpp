#include "coordinator/aggregation/aggregator.h"

#include <stdexcept>

#include "coordinator/aggregation/cpu/cpu_aggregator.h"
#ifdef TAPESTRY_HAVE_CUDA
#include "coordinator/aggregation/cuda/cuda_aggregator.h"
#endif

namespace tapestry::coordinator {

std::unique_ptr<Aggregator> makeAggregator(AggregatorDevice device, unsigned cpu_threads) {
  switch (device) {
    case AggregatorDevice::kCpu:
      return std::make_unique<cpu::CpuAggregator>(cpu_threads);
    case AggregatorDevice::kCuda: {
      const std::string reason = cudaUnavailableReason();
      if (!reason.empty()) {
        throw std::runtime_error("aggregation device \"cuda\" was requested but CUDA is unavailable (" + reason +
                                 "); set \"device\": \"cpu\" or \"auto\" in the coordinator configuration");
      }
#ifdef TAPESTRY_HAVE_CUDA
      return makeCudaAggregator();
#else
      break;
#endif
    }
    case AggregatorDevice::kAuto:
#ifdef TAPESTRY_HAVE_CUDA
      if (cudaAggregatorAvailable()) return makeCudaAggregator();
#endif
      return std::make_unique<cpu::CpuAggregator>(cpu_threads);
  }
  throw std::invalid_argument("makeAggregator: unknown AggregatorDevice value " +
                              std::to_string(static_cast<int>(device)));
}

bool cudaAggregatorAvailable() { return cudaUnavailableReason().empty(); }

std::string cudaUnavailableReason() {
#ifdef TAPESTRY_HAVE_CUDA
  std::string reason;
  if (cudaDevicePresent(&reason)) return {};
  return reason;
#else
  return "built without nvcc";
#endif
}

}  // namespace tapestry::coordinator
