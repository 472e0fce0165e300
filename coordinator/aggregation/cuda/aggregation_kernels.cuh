#pragma once
// Device kernels of the CUDA backend: elementwise, grid-stride, one thread
// per element or per 16-byte vector of the source, so each element is
// written by one thread and the results match the CPU reference: the same
// float operations in the same order (built with -fmad=false).
#include <cstddef>
#include <cstdint>

#include "coordinator/aggregation/server_optimizer.h"

namespace tapestry::coordinator {

// dst[i] += weight * src[i] for i in [begin, end). dst and src are 16-byte
// aligned and indexed alike, so whole float4s are aligned in both; at most
// three elements at each end go through the scalar path.
__global__ void accumulateKernel(float* __restrict__ dst, const float* __restrict__ src, float weight, size_t begin,
                                 size_t end) {
  const size_t thread = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t vec_begin = (begin + 3) / 4;
  const size_t vec_end = end / 4;
  float4* dst4 = reinterpret_cast<float4*>(dst);
  const float4* src4 = reinterpret_cast<const float4*>(src);
  for (size_t v = vec_begin + thread; v < vec_end; v += stride) {
    float4 d = dst4[v];
    const float4 s = src4[v];
    d.x += weight * s.x;
    d.y += weight * s.y;
    d.z += weight * s.z;
    d.w += weight * s.w;
    dst4[v] = d;
  }
  // Scalar head [begin, head_end) and tail [tail_begin, end), each < 4 long
  // and disjoint from the vectors and from each other.
  const size_t head_end = min(vec_begin * 4, end);
  const size_t tail_begin = max(vec_end * 4, head_end);
  for (size_t i = begin + thread; i < head_end; i += stride) dst[i] += weight * src[i];
  for (size_t i = tail_begin + thread; i < end; i += stride) dst[i] += weight * src[i];
}

__device__ inline float bf16ToFloatDevice(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

// Exact fp16 -> fp32 (subnormals included), the same value as the CPU's.
__device__ inline float fp16ToFloatDevice(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return __uint_as_float(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
    return sign != 0 ? -magnitude : magnitude;
  }
  return __uint_as_float(sign | ((exp + 112) << 23) | (mant << 13));
}

template <bool kBf16>
__device__ inline float halfToFloat(uint16_t h) {
  return kBf16 ? bf16ToFloatDevice(h) : fp16ToFloatDevice(h);
}

// dst[i] += weight * half(src[i]) for i in [begin, end); dst and src indexed
// alike and aligned so that 8-element groups are one 16-byte load of src.
template <bool kBf16>
__global__ void accumulateHalfKernel(float* __restrict__ dst, const uint16_t* __restrict__ src, float weight,
                                     size_t begin, size_t end) {
  const size_t thread = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t vec_begin = (begin + 7) / 8;
  const size_t vec_end = end / 8;
  const uint4* src8 = reinterpret_cast<const uint4*>(src);
  float4* dst4 = reinterpret_cast<float4*>(dst);
  for (size_t v = vec_begin + thread; v < vec_end; v += stride) {
    const uint4 raw = src8[v];
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float4 d = dst4[2 * v + half];
      const uint32_t lo = words[2 * half];
      const uint32_t hi = words[2 * half + 1];
      d.x += weight * halfToFloat<kBf16>(static_cast<uint16_t>(lo));
      d.y += weight * halfToFloat<kBf16>(static_cast<uint16_t>(lo >> 16));
      d.z += weight * halfToFloat<kBf16>(static_cast<uint16_t>(hi));
      d.w += weight * halfToFloat<kBf16>(static_cast<uint16_t>(hi >> 16));
      dst4[2 * v + half] = d;
    }
  }
  const size_t head_end = min(vec_begin * 8, end);
  const size_t tail_begin = max(vec_end * 8, head_end);
  for (size_t i = begin + thread; i < head_end; i += stride) dst[i] += weight * halfToFloat<kBf16>(src[i]);
  for (size_t i = tail_begin + thread; i < end; i += stride) dst[i] += weight * halfToFloat<kBf16>(src[i]);
}

// Int8 blocks, staged de-interleaved: q[begin + j] is element j of the piece
// and scales[j / block_elements] its scale. dst and q are indexed alike and
// aligned so that 16-element groups are one 16-byte load of q.
__global__ void accumulateInt8Kernel(float* __restrict__ dst, const int8_t* __restrict__ q,
                                     const float* __restrict__ scales, float weight, size_t begin, size_t end,
                                     uint32_t block_elements) {
  const size_t thread = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t vec_begin = (begin + 15) / 16;
  const size_t vec_end = end / 16;
  const uint4* q16 = reinterpret_cast<const uint4*>(q);
  float4* dst4 = reinterpret_cast<float4*>(dst);
  for (size_t v = vec_begin + thread; v < vec_end; v += stride) {
    const uint4 raw = q16[v];
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    size_t j = v * 16 - begin;
    size_t block = j / block_elements;
    size_t next = (block + 1) * block_elements;
#pragma unroll
    for (int part = 0; part < 4; ++part) {
      float4 d = dst4[4 * v + part];
      float* lanes[4] = {&d.x, &d.y, &d.z, &d.w};
#pragma unroll
      for (int lane = 0; lane < 4; ++lane, ++j) {
        while (j >= next) {
          ++block;
          next += block_elements;
        }
        const auto value = static_cast<int8_t>(words[part] >> (8 * lane));
        *lanes[lane] += weight * (static_cast<float>(value) * scales[block]);
      }
      dst4[4 * v + part] = d;
    }
  }
  const size_t head_end = min(vec_begin * 16, end);
  const size_t tail_begin = max(vec_end * 16, head_end);
  for (size_t i = begin + thread; i < head_end; i += stride) {
    dst[i] += weight * (static_cast<float>(q[i]) * scales[(i - begin) / block_elements]);
  }
  for (size_t i = tail_begin + thread; i < end; i += stride) {
    dst[i] += weight * (static_cast<float>(q[i]) * scales[(i - begin) / block_elements]);
  }
}

// One pass: mean = sum * inv_weight, the server update of serverUpdateRange,
// and sum = 0 for the next round.
__global__ void finalizeKernel(float* __restrict__ sum, float inv_weight, ServerOptimizerKind kind, float lr, float mu,
                               AdamCoefficients adam, float* __restrict__ consensus, float* __restrict__ momentum,
                               float* __restrict__ second, size_t count) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float mean = sum[i] * inv_weight;
    if (kind == ServerOptimizerKind::kNesterov) {
      const float z = consensus[i];
      const float delta = z - mean;
      const float velocity = mu * momentum[i] + delta;
      momentum[i] = velocity;
      consensus[i] = z - lr * (delta + mu * velocity);
    } else if (kind == ServerOptimizerKind::kAdam) {
      const float z = consensus[i];
      const float g = z - mean;
      const float m = adam.beta1 * momentum[i] + adam.one_minus_beta1 * g;
      const float v = adam.beta2 * second[i] + adam.one_minus_beta2 * (g * g);
      momentum[i] = m;
      second[i] = v;
      const float m_hat = m * adam.correction1;
      const float v_hat = v * adam.correction2;
      consensus[i] = z - adam.lr * (m_hat / (sqrtf(v_hat) + adam.epsilon));
    } else {
      consensus[i] = mean;
    }
    sum[i] = 0.0f;
  }
}

}  // namespace tapestry::coordinator
