#include "coordinator/aggregation/cuda/cuda_aggregator.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "coordinator/aggregation/aggregator_checks.h"
#include "coordinator/aggregation/cuda/aggregation_kernels.cuh"

namespace tapestry::coordinator {
namespace {

constexpr int kBlockThreads = 256;
constexpr unsigned kMaxBlocks = 4096;
// Elements per staging slot (16 MiB); chunks larger than this are split.
constexpr size_t kStagingElements = size_t{1} << 22;
// A slot holds up to 3 leading pad elements so a chunk keeps its sum alignment.
constexpr size_t kStagingCapacity = kStagingElements + 4;

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA aggregator: ") + call + " failed: " + cudaGetErrorString(status));
  }
}
#define TAPESTRY_CUDA_CHECK(call) check((call), #call)

unsigned blocksFor(size_t work_items) {
  const size_t blocks = (work_items + kBlockThreads - 1) / kBlockThreads;
  return static_cast<unsigned>(std::clamp<size_t>(blocks, 1, kMaxBlocks));
}

// Running sum in device memory. accumulate() copies the caller's chunk into
// one of two pinned host slots and returns; the slot's upload (copy stream)
// then overlaps the previous slot's kernel (compute stream). All kernels run
// on the one compute stream, so chunks that hit the same elements never race.
// A slot is reused only after its last kernel finished (host waits on its
// event). finalize() runs one fused kernel and waits for the result.
class CudaAggregator final : public Aggregator {
 public:
  CudaAggregator() {
    try {
      TAPESTRY_CUDA_CHECK(cudaGetDevice(&device_));
      TAPESTRY_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
      TAPESTRY_CUDA_CHECK(cudaStreamCreateWithFlags(&compute_stream_, cudaStreamNonBlocking));
      for (Slot& slot : slots_) {
        TAPESTRY_CUDA_CHECK(cudaMallocHost(&slot.host, kStagingCapacity * sizeof(float)));
        TAPESTRY_CUDA_CHECK(cudaMalloc(&slot.device, kStagingCapacity * sizeof(float)));
        TAPESTRY_CUDA_CHECK(cudaEventCreateWithFlags(&slot.uploaded, cudaEventDisableTiming));
        TAPESTRY_CUDA_CHECK(cudaEventCreateWithFlags(&slot.consumed, cudaEventDisableTiming));
      }
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaAggregator() override { release(); }

  std::string backendName() const override { return "cuda"; }

  void reset(size_t elements) override {
    TAPESTRY_CUDA_CHECK(cudaSetDevice(device_));
    TAPESTRY_CUDA_CHECK(cudaStreamSynchronize(compute_stream_));
    if (elements != elements_) {
      freeRoundBuffers();
      elements_ = 0;
      if (elements > 0) {
        TAPESTRY_CUDA_CHECK(cudaMalloc(&sum_, elements * sizeof(float)));
        TAPESTRY_CUDA_CHECK(cudaMalloc(&consensus_, elements * sizeof(float)));
        TAPESTRY_CUDA_CHECK(cudaMalloc(&momentum_, elements * sizeof(float)));
      }
      elements_ = elements;
    }
    if (elements_ > 0) {
      TAPESTRY_CUDA_CHECK(cudaMemsetAsync(sum_, 0, elements_ * sizeof(float), compute_stream_));
      TAPESTRY_CUDA_CHECK(cudaStreamSynchronize(compute_stream_));
    }
  }

  void accumulate(size_t offset, const float* src, size_t count, float weight) override {
    checkAccumulateArgs(elements_, offset, src, count, weight);
    TAPESTRY_CUDA_CHECK(cudaSetDevice(device_));
    for (size_t done = 0; done < count;) {
      const size_t piece = std::min(kStagingElements, count - done);
      const size_t at = offset + done;
      const size_t pad = at % 4;
      Slot& slot = slots_[next_slot_];
      next_slot_ ^= 1;
      TAPESTRY_CUDA_CHECK(cudaEventSynchronize(slot.consumed));
      std::memcpy(slot.host + pad, src + done, piece * sizeof(float));
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(slot.device + pad, slot.host + pad, piece * sizeof(float),
                                          cudaMemcpyHostToDevice, copy_stream_));
      TAPESTRY_CUDA_CHECK(cudaEventRecord(slot.uploaded, copy_stream_));
      TAPESTRY_CUDA_CHECK(cudaStreamWaitEvent(compute_stream_, slot.uploaded, 0));
      accumulateKernel<<<blocksFor(piece / 4 + 1), kBlockThreads, 0, compute_stream_>>>(sum_ + (at - pad), slot.device,
                                                                                       weight, pad, pad + piece);
      TAPESTRY_CUDA_CHECK(cudaGetLastError());
      TAPESTRY_CUDA_CHECK(cudaEventRecord(slot.consumed, compute_stream_));
      done += piece;
    }
  }

  void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                float* momentum) override {
    checkFinalizeArgs(elements_, total_weight, settings, consensus, momentum);
    TAPESTRY_CUDA_CHECK(cudaSetDevice(device_));
    if (elements_ == 0) return;
    const size_t bytes = elements_ * sizeof(float);
    const bool nesterov = settings.kind == ServerOptimizerKind::kNesterov;
    if (nesterov) {
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(consensus_, consensus, bytes, cudaMemcpyHostToDevice, compute_stream_));
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(momentum_, momentum, bytes, cudaMemcpyHostToDevice, compute_stream_));
    }
    finalizeKernel<<<blocksFor(elements_), kBlockThreads, 0, compute_stream_>>>(
        sum_, static_cast<float>(1.0 / total_weight), nesterov, settings.lr, settings.momentum, consensus_,
        momentum_, elements_);
    TAPESTRY_CUDA_CHECK(cudaGetLastError());
    TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(consensus, consensus_, bytes, cudaMemcpyDeviceToHost, compute_stream_));
    if (nesterov) {
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(momentum, momentum_, bytes, cudaMemcpyDeviceToHost, compute_stream_));
    }
    TAPESTRY_CUDA_CHECK(cudaStreamSynchronize(compute_stream_));
  }

 private:
  struct Slot {
    float* host = nullptr;
    float* device = nullptr;
    cudaEvent_t uploaded = nullptr;
    cudaEvent_t consumed = nullptr;
  };

  // Errors are ignored here: this runs from the destructor, which must not
  // throw, and a failed device leaves nothing to recover.
  void release() {
    cudaSetDevice(device_);
    if (compute_stream_ != nullptr) cudaStreamSynchronize(compute_stream_);
    if (copy_stream_ != nullptr) cudaStreamSynchronize(copy_stream_);
    freeRoundBuffers();
    for (Slot& slot : slots_) {
      if (slot.host != nullptr) cudaFreeHost(slot.host);
      if (slot.device != nullptr) cudaFree(slot.device);
      if (slot.uploaded != nullptr) cudaEventDestroy(slot.uploaded);
      if (slot.consumed != nullptr) cudaEventDestroy(slot.consumed);
      slot = Slot{};
    }
    if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
    if (compute_stream_ != nullptr) cudaStreamDestroy(compute_stream_);
    copy_stream_ = compute_stream_ = nullptr;
  }

  void freeRoundBuffers() {
    if (sum_ != nullptr) cudaFree(sum_);
    if (consensus_ != nullptr) cudaFree(consensus_);
    if (momentum_ != nullptr) cudaFree(momentum_);
    sum_ = consensus_ = momentum_ = nullptr;
  }

  int device_ = 0;
  cudaStream_t copy_stream_ = nullptr;
  cudaStream_t compute_stream_ = nullptr;
  Slot slots_[2];
  unsigned next_slot_ = 0;
  size_t elements_ = 0;
  float* sum_ = nullptr;
  float* consensus_ = nullptr;
  float* momentum_ = nullptr;
};

}  // namespace

std::unique_ptr<Aggregator> makeCudaAggregator() { return std::make_unique<CudaAggregator>(); }

bool cudaDevicePresent(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (reason != nullptr) {
      *reason = std::string("no CUDA device: ") + cudaGetErrorString(status);
      if (status == cudaErrorInsufficientDriver) {
        *reason += " (no NVIDIA driver is loaded, or it is older than this build's CUDA " +
                   std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) + ")";
      }
    }
    return false;
  }
  if (count == 0) {
    if (reason != nullptr) *reason = "no CUDA device: the runtime sees none";
    return false;
  }
  if (reason != nullptr) reason->clear();
  return true;
}

}  // namespace tapestry::coordinator
