#include "coordinator/aggregation/aggregator.h"

#include <stdexcept>

#include "coordinator/aggregation/cpu/cpu_aggregator.h"
#ifdef TAPESTRY_HAVE_CUDA
#include "coordinator/aggregation/cuda/cuda_aggregator.h"
#endif

namespace tapestry::coordinator {

ServerOptimizerKind parseServerOptimizer(const std::string& name) {
  if (name == "plain") return ServerOptimizerKind::kPlain;
  if (name == "nesterov") return ServerOptimizerKind::kNesterov;
  if (name == "adam") return ServerOptimizerKind::kAdam;
  throw std::invalid_argument("unknown server optimizer \"" + name + "\"; choose plain, nesterov or adam");
}

const char* serverOptimizerName(ServerOptimizerKind kind) {
  switch (kind) {
    case ServerOptimizerKind::kPlain: return "plain";
    case ServerOptimizerKind::kNesterov: return "nesterov";
    case ServerOptimizerKind::kAdam: return "adam";
  }
  return "unknown";
}

void Aggregator::finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                          float* momentum) {
  if (settings.kind == ServerOptimizerKind::kAdam) {
    throw std::invalid_argument(
        "Aggregator::finalize: the adam server optimizer needs a second moment and a step count; call the "
        "overload that takes a ServerOptimizerState");
  }
  ServerOptimizerState state;
  state.momentum = momentum;
  finalize(total_weight, settings, consensus, state);
}

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

double cudaDeviceCopySeconds(size_t bytes, unsigned repeats) {
  const std::string reason = cudaUnavailableReason();
  if (!reason.empty())
    throw std::runtime_error("cannot measure the device copy ceiling: CUDA is unavailable (" + reason + ")");
#ifdef TAPESTRY_HAVE_CUDA
  return cudaCopySeconds(bytes, repeats);
#else
  (void)bytes;
  (void)repeats;
  return 0.0;
#endif
}

}  // namespace tapestry::coordinator
