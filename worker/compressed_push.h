#pragma once
// What a worker puts on the wire for a round. fp32 sends the vector x
// itself. The compressed encodings (bf16, fp16, blockwise int8) send the
// delta x - z_r, which is small and centred, so it survives a narrow type;
// with error feedback the part rounding lost is kept as a residual and added
// to the next round's delta, so over rounds nothing is lost, only delayed.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/payload.h"

namespace tapestry::worker {

struct TransferSettings {
  proto::DType dtype = proto::DTYPE_FP32;
  uint32_t block_elements = common::kDefaultBlockElements;  // int8 only
  bool error_feedback = true;
  // Keep training while a push and the next consensus are on the wire
  // (easgd and admm, which keep their own parameters between rounds): the
  // steps taken meanwhile count towards the next round, at most one round
  // ahead. Ignored, with a warning, for fedavg and fedprox, which restart
  // every round from the consensus and would throw those steps away.
  bool overlap = false;
};

// "fp32" | "bf16" | "fp16" | "int8"; throws std::invalid_argument listing them.
proto::DType parseEncoding(const std::string& name);
const char* encodingName(proto::DType dtype);

struct OutgoingPush {
  std::shared_ptr<const common::EncodedPayload> payload;
  std::shared_ptr<const std::vector<float>> values;  // what was encoded (x, or x - z + residual)
  bool delta = false;
  std::vector<float> residual;  // the error feedback to carry to the next round (compressed only)
};

// Encodes x for the round whose consensus is z (both n floats). `residual`
// is the previous round's (empty: none). Throws std::invalid_argument on
// mismatched sizes.
OutgoingPush encodePush(const std::vector<float>& x, const std::vector<float>& z, const std::vector<float>& residual,
                        const TransferSettings& settings, uint32_t chunk_elements);

}  // namespace tapestry::worker
