#pragma once
// CPU kernels over encoded chunks: a fold that dequantises inside the loop (no
// decoded copy), and the same fold that checks each cache-sized tile for
// NaN/Inf just before folding it, so the bytes are read from memory once.
// Both take a range of element
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

// Elements per tile of foldCheckedRange (a multiple of block_elements for int8).
size_t checkedTileElements(EncodedDType dtype, uint32_t block_elements);

// foldEncodedRange tile by tile, each tile checked before it is folded.
// Returns end when every value in [begin, end) was finite; otherwise the start
// of the first tile holding a NaN/Inf value (or, for int8, a block whose scale
// is not finite or above kMaxInt8Scale), from which on nothing was folded.
// int8 ranges must start on a block boundary.
size_t foldCheckedRange(float* dst, EncodedDType dtype, const uint8_t* bytes, size_t begin, size_t end, float weight,
                        uint32_t block_elements);

}  // namespace tapestry::coordinator::cpu
