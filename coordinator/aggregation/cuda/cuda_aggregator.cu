#include "coordinator/aggregation/cuda/cuda_aggregator.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/error.h"
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
constexpr size_t kStagingBytes = kStagingElements * sizeof(float);

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

size_t roundUp(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Copies `n` little-endian words from src to dst and returns the largest
// |bits| among them. One pass, so the finite check rides on the staging copy.
template <typename Word>
uint32_t copyMaxAbs(Word* dst, const uint8_t* src, size_t n, Word abs_mask) {
  Word most = 0;
  for (size_t i = 0; i < n; ++i) {
    Word w;
    std::memcpy(&w, src + i * sizeof(Word), sizeof(Word));
    dst[i] = w;
    most = std::max<Word>(most, w & abs_mask);
  }
  return most;
}

// Copies elements [first, first + n) of an encoded chunk to dst (int8: q
// bytes to dst, scales to scales) and says whether they are all finite. Int8 ranges start on a block boundary.
bool stageEncoded(EncodedDType dtype, const uint8_t* chunk, size_t first, size_t n, uint32_t block_elements,
                  uint8_t* dst, float* scales) {
  switch (dtype) {
    case EncodedDType::kFp32:
      return fp32BitsFinite(copyMaxAbs<uint32_t>(reinterpret_cast<uint32_t*>(dst), chunk + 4 * first, n, 0x7FFFFFFFu));
    case EncodedDType::kBf16:
      return bf16BitsFinite(copyMaxAbs<uint16_t>(reinterpret_cast<uint16_t*>(dst), chunk + 2 * first, n, 0x7FFFu));
    case EncodedDType::kFp16:
      return fp16BitsFinite(copyMaxAbs<uint16_t>(reinterpret_cast<uint16_t*>(dst), chunk + 2 * first, n, 0x7FFFu));
    case EncodedDType::kInt8Block: {
      bool ok = true;
      const size_t stride = block_elements + kInt8ScaleBytes;
      for (size_t done = 0, block = first / block_elements; done < n; done += block_elements, ++block) {
        const uint8_t* at = chunk + block * stride;
        const float scale = loadF32(at);
        ok = ok && int8ScaleAcceptable(scale);
        scales[done / block_elements] = scale;
        std::memcpy(dst + done, at + kInt8ScaleBytes, std::min<size_t>(block_elements, n - done));
      }
      return ok;
    }
  }
  return false;
}

// Elements per staging piece: int8 pieces are whole blocks, laid out as
// pad + q bytes, padding to 16, then one float scale per block.
size_t pieceElements(EncodedDType dtype, uint32_t block_elements) {
  switch (dtype) {
    case EncodedDType::kFp32: return kStagingElements;
    case EncodedDType::kBf16:
    case EncodedDType::kFp16: return kStagingBytes / 2;
    case EncodedDType::kInt8Block: return (kStagingBytes - 32) / (block_elements + kInt8ScaleBytes) * block_elements;
  }
  return 0;
}

// Running sum in device memory. accumulate() copies the caller's chunk into
// one of two pinned host slots and returns; the slot's upload (copy stream)
// then overlaps the previous slot's kernel (compute stream). All kernels run
// on the one compute stream, so chunks that hit the same elements never race.
// A slot is reused only after its last kernel finished (host waits on its
// event). accumulateEncoded() stages the raw encoded bytes the same way
// (int8: q bytes and scales de-interleaved) and a kernel dequantises them
// with 16-byte loads as it folds. finalize() runs one fused kernel and waits
// for the result.
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
  using Aggregator::finalize;

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

  std::error_code accumulateEncoded(size_t offset, EncodedDType dtype, const uint8_t* bytes, size_t count, float weight,
                                    uint32_t block_elements, const float* stand_in) override {
    checkAccumulateEncodedArgs(elements_, offset, dtype, bytes, count, weight, block_elements);
    TAPESTRY_CUDA_CHECK(cudaSetDevice(device_));
    const size_t piece_limit = pieceElements(dtype, block_elements);
    // Each piece is checked while it is staged, before its kernel is queued.
    // Pieces already queued stay folded; from a bad piece on, the stand-in is.
    for (size_t done = 0; done < count;) {
      const size_t piece = std::min(piece_limit, count - done);
      const size_t at = offset + done;
      Slot& slot = slots_[next_slot_];
      TAPESTRY_CUDA_CHECK(cudaEventSynchronize(slot.consumed));
      auto* host = reinterpret_cast<uint8_t*>(slot.host);
      auto* device = reinterpret_cast<uint8_t*>(slot.device);
      // Element j of the piece sits at staging index pad + j with pad = at mod
      // (elements per 16-byte source vector), so vectors align with the sum.
      const size_t per_vector = dtype == EncodedDType::kFp32 ? 4 : dtype == EncodedDType::kInt8Block ? 16 : 8;
      const size_t width = dtype == EncodedDType::kFp32 ? 4 : dtype == EncodedDType::kInt8Block ? 1 : 2;
      const size_t pad = at % per_vector;
      const size_t scales_at = roundUp(pad + piece, 16);
      auto* scales = reinterpret_cast<float*>(host + scales_at);
      if (!stageEncoded(dtype, bytes, done, piece, block_elements, host + pad * width, scales)) {
        if (stand_in != nullptr) accumulate(at, stand_in + done, count - done, weight);
        return common::Errc::kNonFinite;
      }
      next_slot_ ^= 1;
      size_t upload_end = (pad + piece) * width;
      if (dtype == EncodedDType::kInt8Block) {
        upload_end = scales_at + (piece + block_elements - 1) / block_elements * sizeof(float);
      }
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(device + pad * width, host + pad * width, upload_end - pad * width,
                                          cudaMemcpyHostToDevice, copy_stream_));
      TAPESTRY_CUDA_CHECK(cudaEventRecord(slot.uploaded, copy_stream_));
      TAPESTRY_CUDA_CHECK(cudaStreamWaitEvent(compute_stream_, slot.uploaded, 0));
      float* dst = sum_ + (at - pad);
      const unsigned blocks = blocksFor(piece / per_vector + 1);
      switch (dtype) {
        case EncodedDType::kFp32:
          accumulateKernel<<<blocks, kBlockThreads, 0, compute_stream_>>>(dst, slot.device, weight, pad, pad + piece);
          break;
        case EncodedDType::kBf16:
          accumulateHalfKernel<true><<<blocks, kBlockThreads, 0, compute_stream_>>>(
              dst, reinterpret_cast<const uint16_t*>(device), weight, pad, pad + piece);
          break;
        case EncodedDType::kFp16:
          accumulateHalfKernel<false><<<blocks, kBlockThreads, 0, compute_stream_>>>(
              dst, reinterpret_cast<const uint16_t*>(device), weight, pad, pad + piece);
          break;
        case EncodedDType::kInt8Block:
          accumulateInt8Kernel<<<blocks, kBlockThreads, 0, compute_stream_>>>(
              dst, reinterpret_cast<const int8_t*>(device), reinterpret_cast<const float*>(device + scales_at), weight,
              pad, pad + piece, block_elements);
          break;
      }
      TAPESTRY_CUDA_CHECK(cudaGetLastError());
      TAPESTRY_CUDA_CHECK(cudaEventRecord(slot.consumed, compute_stream_));
      done += piece;
    }
    return {};
  }

  void finalize(double total_weight, const ServerOptimizerSettings& settings, float* consensus,
                const ServerOptimizerState& state) override {
    checkFinalizeArgs(elements_, total_weight, settings, consensus, state);
    TAPESTRY_CUDA_CHECK(cudaSetDevice(device_));
    if (elements_ == 0) return;
    const size_t bytes = elements_ * sizeof(float);
    const bool nesterov = settings.kind == ServerOptimizerKind::kNesterov;
    const bool adam = settings.kind == ServerOptimizerKind::kAdam;
    if (adam && second_ == nullptr) TAPESTRY_CUDA_CHECK(cudaMalloc(&second_, bytes));
    if (nesterov || adam) {
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(consensus_, consensus, bytes, cudaMemcpyHostToDevice, compute_stream_));
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(momentum_, state.momentum, bytes, cudaMemcpyHostToDevice, compute_stream_));
    }
    if (adam) {
      TAPESTRY_CUDA_CHECK(
          cudaMemcpyAsync(second_, state.second_moment, bytes, cudaMemcpyHostToDevice, compute_stream_));
    }
    const AdamCoefficients coefficients = adam ? adamCoefficients(settings, state.step) : AdamCoefficients{};
    finalizeKernel<<<blocksFor(elements_), kBlockThreads, 0, compute_stream_>>>(
        sum_, static_cast<float>(1.0 / total_weight), settings.kind, settings.lr, settings.momentum, coefficients,
        consensus_, momentum_, second_, elements_);
    TAPESTRY_CUDA_CHECK(cudaGetLastError());
    TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(consensus, consensus_, bytes, cudaMemcpyDeviceToHost, compute_stream_));
    if (nesterov || adam) {
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(state.momentum, momentum_, bytes, cudaMemcpyDeviceToHost, compute_stream_));
    }
    if (adam) {
      TAPESTRY_CUDA_CHECK(
          cudaMemcpyAsync(state.second_moment, second_, bytes, cudaMemcpyDeviceToHost, compute_stream_));
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
    if (second_ != nullptr) cudaFree(second_);
    sum_ = consensus_ = momentum_ = second_ = nullptr;
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
  float* second_ = nullptr;  // adam's second moment, allocated on first use
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

double cudaCopySeconds(size_t bytes, unsigned repeats) {
  void* src = nullptr;
  void* dst = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  float ms = 0.0f;
  try {
    TAPESTRY_CUDA_CHECK(cudaMalloc(&src, bytes));
    TAPESTRY_CUDA_CHECK(cudaMalloc(&dst, bytes));
    TAPESTRY_CUDA_CHECK(cudaMemset(src, 1, bytes));
    TAPESTRY_CUDA_CHECK(cudaEventCreate(&start));
    TAPESTRY_CUDA_CHECK(cudaEventCreate(&stop));
    TAPESTRY_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
    TAPESTRY_CUDA_CHECK(cudaEventRecord(start));
    for (unsigned r = 0; r < repeats; ++r) {
      TAPESTRY_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    }
    TAPESTRY_CUDA_CHECK(cudaEventRecord(stop));
    TAPESTRY_CUDA_CHECK(cudaEventSynchronize(stop));
    TAPESTRY_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  } catch (...) {
    cudaFree(src);
    cudaFree(dst);
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    throw;
  }
  cudaFree(src);
  cudaFree(dst);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1000.0;
}

}  // namespace tapestry::coordinator
