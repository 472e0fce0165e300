#include "worker/compressed_push.h"

#include <stdexcept>

namespace tapestry::worker {

proto::DType parseEncoding(const std::string& name) {
  if (name == "fp32") return proto::DTYPE_FP32;
  if (name == "bf16") return proto::DTYPE_BF16;
  if (name == "fp16") return proto::DTYPE_FP16;
  if (name == "int8") return proto::DTYPE_INT8_BLOCK;
  throw std::invalid_argument("unknown encoding \"" + name + "\"; use fp32, bf16, fp16 or int8");
}

const char* encodingName(proto::DType dtype) {
  switch (dtype) {
    case proto::DTYPE_FP32: return "fp32";
    case proto::DTYPE_BF16: return "bf16";
    case proto::DTYPE_FP16: return "fp16";
    case proto::DTYPE_INT8_BLOCK: return "int8";
    default: return "?";
  }
}

OutgoingPush encodePush(const std::vector<float>& x, const std::vector<float>& z, const std::vector<float>& residual,
                        const TransferSettings& settings, uint32_t chunk_elements) {
  OutgoingPush out;
  if (settings.dtype == proto::DTYPE_FP32) {
    auto values = std::make_shared<const std::vector<float>>(x);
    out.payload = std::make_shared<const common::EncodedPayload>(
        common::EncodedPayload::encode(proto::DTYPE_FP32, values->data(), values->size(), chunk_elements));
    out.values = std::move(values);
    return out;
  }
  const size_t n = x.size();
  if (z.size() != n || (!residual.empty() && residual.size() != n))
    throw std::invalid_argument("encodePush: the vector, the consensus and the residual differ in size");
  // A residual is owed only while error feedback is on; one left from
  // before it was turned off is not added again and again.
  const bool owed = settings.error_feedback && !residual.empty();
  auto delta = std::make_shared<std::vector<float>>(n);
  for (size_t i = 0; i < n; ++i) (*delta)[i] = x[i] - z[i] + (owed ? residual[i] : 0.0f);
  auto payload = std::make_shared<const common::EncodedPayload>(common::EncodedPayload::encode(
      settings.dtype, delta->data(), n, chunk_elements,
      settings.dtype == proto::DTYPE_INT8_BLOCK ? settings.block_elements : common::kDefaultBlockElements));
  out.delta = true;
  if (settings.error_feedback) {
    // What the coordinator will decode, chunk by chunk, subtracted from what was meant.
    out.residual.resize(n);
    const auto& header = payload->header();
    for (size_t c = 0; c < payload->chunks(); ++c) {
      auto [bytes, size] = payload->chunk(c);
      const size_t offset = c * header.chunk_elements();
      if (auto ec = common::decodeChunk(header, c, bytes, size, out.residual.data() + offset))
        throw std::runtime_error("encodePush: the encoded delta does not decode (" + ec.message() +
                                 "); the local parameters hold NaN or Inf");
    }
    for (size_t i = 0; i < n; ++i) out.residual[i] = (*delta)[i] - out.residual[i];
  }
  out.payload = std::move(payload);
  out.values = std::move(delta);
  return out;
}

}  // namespace tapestry::worker
