#include "common/error.h"

namespace tapestry::common {
namespace {

class Category : public std::error_category {
 public:
  const char* name() const noexcept override { return "tapestry"; }
  std::string message(int v) const override {
    switch (static_cast<Errc>(v)) {
      case Errc::kOk: return "ok";
      case Errc::kMalformedFrame: return "malformed frame or message";
      case Errc::kFrameTooLarge: return "frame larger than the protocol limit";
      case Errc::kChecksumMismatch: return "payload chunk CRC32C mismatch";
      case Errc::kNonFinite: return "payload contains NaN or Inf";
      case Errc::kUnsupportedDtype: return "unsupported payload dtype";
      case Errc::kShapeMismatch: return "payload size or chunking differs from the model";
      case Errc::kFingerprintMismatch: return "model fingerprint differs from the federation's";
      case Errc::kProtocolVersion: return "unsupported protocol version";
      case Errc::kStaleRound: return "push for a round that is not open";
      case Errc::kDuplicateIdentity: return "another session with this identity is active";
      case Errc::kTimeout: return "timed out";
      case Errc::kClosed: return "session closed by peer";
      case Errc::kFinished: return "federation finished";
      case Errc::kRejected: return "rejected by peer";
      case Errc::kNotReading: return "the peer is not reading what is sent to it";
      case Errc::kRevoked: return "its certificate was revoked";
    }
    return "unknown tapestry error";
  }
};

}  // namespace

const std::error_category& errorCategory() {
  static const Category category;
  return category;
}

std::error_code makeError(Errc e) { return {static_cast<int>(e), errorCategory()}; }

}  // namespace tapestry::common
