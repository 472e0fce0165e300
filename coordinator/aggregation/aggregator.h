#pragma once
// Aggregation maths behind one interface. An Aggregator owns a running
// weighted sum of P elements and folds contributions into it chunk by chunk
// as they arrive, so memory is O(P) whatever the number of workers. finalize()
// turns the sum into the mean and applies the server optimizer to the
// consensus in the same pass. Backends: cpu/ (always) and cuda/ (when built
// with nvcc and a GPU is present). Callers get one from makeAggregator() and
// never name a backend type.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "coordinator/aggregation/encoded_chunk.h"

namespace tapestry::coordinator {

enum class ServerOptimizerKind { kPlain, kNesterov, kAdam };

// lr is the outer learning rate of nesterov and adam. Suggested values:
// nesterov lr 0.7, momentum 0.9 (DiLoCo); adam lr 0.01, beta1 0.9, beta2 0.99,
// epsilon (the paper's tau) 1e-3 (Reddi et al. 2021).
struct ServerOptimizerSettings {
  ServerOptimizerKind kind = ServerOptimizerKind::kPlain;
  float lr = 1.0f;
  float momentum = 0.9f;  // nesterov
  float beta1 = 0.9f;     // adam: first-moment decay
  float beta2 = 0.99f;    // adam: second-moment decay
  float epsilon = 1e-3f;  // adam: tau, added to sqrt(v̂)
};

// Host arrays of `elements` floats carried from round to round by the caller.
// momentum: nesterov's velocity and adam's first moment; second_moment: adam's
// v. step is the 1-based index of the update being applied (adam's bias
// correction); the caller increments it after each finalize.
struct ServerOptimizerState {
  float* momentum = nullptr;
  float* second_moment = nullptr;
  uint64_t step = 0;
};

// "plain" | "nesterov" | "adam"; throws std::invalid_argument listing them.
ServerOptimizerKind parseServerOptimizer(const std::string& name);
const char* serverOptimizerName(ServerOptimizerKind kind);

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

  // The same for `count` elements encoded as `dtype` in `bytes`
  // (encodedByteCount(dtype, count, block_elements) bytes, blocks starting at
  // bytes[0]; block_elements only matters for kInt8Block), decoded inside the
  // kernel. No value is folded before it has been checked. On NaN/Inf (or an
  // int8 scale that is not finite) it returns common::Errc::kNonFinite, and
  // every element of the range that was not folded from `bytes` is folded
  // from `stand_in` instead (stand_in[i] for element offset + i, same weight;
  // null: nothing), so each element still gets exactly one contribution: the
  // sender's where it was checked and folded, the stand-in's elsewhere, as
  // for a push cut off mid-chunk. Which elements a backend folds before it
  // meets the bad value is its own affair (the CPU checks tile by tile, so it
  // reads the chunk once). The CRC and size are the caller's to verify first
  // (common::verifyChunk). Misuse (range, null, weight, block size) throws.
  virtual std::error_code accumulateEncoded(size_t offset, EncodedDType dtype, const uint8_t* bytes, size_t count,
                                            float weight, uint32_t block_elements, const float* stand_in) = 0;

  // mean = sum / total_weight, then the server update on host arrays of
  // `elements` floats: consensus (in: z_r, out: z_{r+1}) and the optimizer
  // state (in/out; see ServerOptimizerState). Clears the sum for the next round.
  virtual void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                        const ServerOptimizerState& state) = 0;

  // Plain and nesterov only (momentum may be null for plain); adam throws
  // std::invalid_argument here because it needs a second moment and a step.
  void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus, float* momentum);
};

// kAuto picks CUDA when this build has it and a device is present, else CPU.
// kCuda throws std::runtime_error with a clear reason when unavailable.
// cpu_threads = 0 means one per hardware thread.
std::unique_ptr<Aggregator> makeAggregator(AggregatorDevice device, unsigned cpu_threads = 0);

// True when this build has the CUDA backend and a CUDA device is visible.
bool cudaAggregatorAvailable();
// Why CUDA is unavailable ("built without nvcc", "no CUDA device: ..."); empty if available.
std::string cudaUnavailableReason();

// Benchmark ceiling: seconds that `repeats` device-to-device copies of
// `bytes` take on the current CUDA device. Throws std::runtime_error (with
// cudaUnavailableReason()) when CUDA is unavailable.
double cudaDeviceCopySeconds(size_t bytes, unsigned repeats);

}  // namespace tapestry::coordinator
