#pragma once
// Device kernels of the CUDA backend: elementwise, grid-stride, one thread
// per element (or per float4), so each element is written by one thread and
// the results match the CPU reference up to rounding.
#include <cstddef>

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

// One pass: mean = sum * inv_weight, the server update of serverUpdateRange,
// and sum = 0 for the next round.
__global__ void finalizeKernel(float* __restrict__ sum, float inv_weight, bool nesterov, float lr, float mu,
                               float* __restrict__ consensus, float* __restrict__ momentum, size_t count) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float mean = sum[i] * inv_weight;
    if (nesterov) {
      const float z = consensus[i];
      const float delta = z - mean;
      const float velocity = mu * momentum[i] + delta;
      momentum[i] = velocity;
      consensus[i] = z - lr * (delta + mu * velocity);
    } else {
      consensus[i] = mean;
    }
    sum[i] = 0.0f;
  }
}

}  // namespace tapestry::coordinator
