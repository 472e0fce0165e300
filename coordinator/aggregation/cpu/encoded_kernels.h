#pragma once
// CPU kernels over encoded chunks: a read-only finite test and a fold that
// dequantises inside the loop (no decoded copy). Both take a range of element
// indices of one chunk so that threads can split it; int8 ranges should start
// on block boundaries to avoid rereading a scale, but any range is correct.
// Loops run at AVX-512, AVX2 or baseline width, chosen at load time; every
// width computes weight * value with one multiply and one add, so results do
// not depend on the machine or the split.
#include <cstddef>
#include <cstdint>

#include "coordinator/aggregation/encoded_chunk.h"

namespace tapestry::coordinator::cpu {

// dst[i] += weight * value(i) for i in [begin, end); dst and bytes both point
// at element 0 of the chunk.
void foldEncodedRange(float* dst, EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, float weight,
                      uint32_t block_elements);

// False when a value in [begin, end) is NaN/Inf, or an int8 block touching
// the range has a scale that is not finite or above kMaxInt8Scale.
bool encodedRangeFinite(EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, uint32_t block_elements);

}  // namespace tapestry::coordinator::cpu
