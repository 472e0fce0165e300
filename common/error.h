#pragma once
// One error vocabulary for peer and I/O failures: std::error_code values in
// Tapestry's own category. Configuration errors and API misuse throw instead.
#include <string>
#include <system_error>

namespace tapestry::common {

enum class Errc {
  kOk = 0,
  kMalformedFrame,     // a frame or message that does not parse
  kFrameTooLarge,      // a length field beyond its hard limit
  kChecksumMismatch,   // a chunk whose CRC32C differs from the declared one
  kNonFinite,          // NaN or Inf in a parameter payload
  kUnsupportedDtype,   // a payload encoding this build does not accept
  kShapeMismatch,      // element count or chunking differs from what is expected
  kFingerprintMismatch,
  kProtocolVersion,
  kStaleRound,
  kDuplicateIdentity,
  kTimeout,
  kClosed,             // the peer closed the session
  kFinished,           // the federation has completed all rounds
  kRejected,           // the peer sent a fatal error
  kNotReading,         // the peer left too much of what was sent to it unread
  kRevoked,            // the peer's certificate was revoked while it was connected
};

const std::error_category& errorCategory();
std::error_code makeError(Errc e);

}  // namespace tapestry::common

namespace std {
template <>
struct is_error_code_enum<tapestry::common::Errc> : true_type {};
}  // namespace std

namespace tapestry::common {
inline std::error_code make_error_code(Errc e) { return makeError(e); }
}  // namespace tapestry::common
