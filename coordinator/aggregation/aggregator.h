#pragma once
// Aggregation maths behind one interface. An Aggregator owns a running
// weighted sum of P elements and folds contributions into it chunk by chunk
// as they arrive, so memory is O(P) whatever the number of workers. finalize()
// turns the sum into the mean and applies the server optimizer to the
// consensus in the same pass. Backends: cpu/ (always) and cuda/ (when built
// with nvcc and a GPU is present). Callers get one from makeAggregator() and
// never name a backend type.
#include <cstddef>
#include <memory>
#include <string>

namespace tapestry::coordinator {

enum class ServerOptimizerKind { kPlain, kNesterov };

struct ServerOptimizerSettings {
  ServerOptimizerKind kind = ServerOptimizerKind::kPlain;
  float lr = 1.0f;        // outer learning rate (nesterov)
  float momentum = 0.9f;  // outer momentum (nesterov)
};

enum class AggregatorDevice { kAuto, kCpu, kCuda };

class Aggregator {
 public:
  virtual ~Aggregator() = default;
  virtual std::string backendName() const = 0;

  // Sizes the running sum for `elements` and sets it to zero.
  virtual void reset(size_t elements) = 0;

  // sum[offset + i] += weight * src[i] for i < count. src is host memory and
  // may be reused by the caller as soon as this returns.
  virtual void accumulate(size_t offset, const float* src, size_t count, float weight) = 0;

  // mean = sum / total_weight, then the server update on host arrays of
  // `elements` floats: consensus (in: z_r, out: z_{r+1}) and momentum (in/out;
  // may be null for kPlain). Clears the sum for the next round.
  virtual void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                        float* momentum) = 0;
};

// kAuto picks CUDA when this build has it and a device is present, else CPU.
// kCuda throws std::runtime_error with a clear reason when unavailable.
// cpu_threads = 0 means one per hardware thread.
std::unique_ptr<Aggregator> makeAggregator(AggregatorDevice device, unsigned cpu_threads = 0);

// True when this build has the CUDA backend and a CUDA device is visible.
bool cudaAggregatorAvailable();
// Why CUDA is unavailable ("built without nvcc", "no CUDA device: ..."); empty if available.
std::string cudaUnavailableReason();

}  // namespace tapestry::coordinator
