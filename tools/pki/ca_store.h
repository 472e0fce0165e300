#pragma once
// Internal to tools/pki: the CA directory's file names, loading the CA's
// certificate and key together, and regenerating its CRL. Callers that
// change the directory hold a FileLock on lockPath() first.
#include <string>
#include <vector>

#include "tools/pki/openssl_util.h"

namespace tapestry::tools::detail {

inline constexpr const char* kCaCertFile = "ca.crt";
inline constexpr const char* kCaKeyFile = "ca.key";
inline constexpr const char* kCrlFile = "crl.pem";
inline constexpr const char* kRevokedFile = "revoked.txt";
inline constexpr const char* kCrlNumberFile = "crlnumber";
inline constexpr const char* kLockFile = ".lock";
inline constexpr int kMaxDays = 36500;
inline constexpr int kCrlValidityDays = 30;

struct CaMaterial {
  std::string dir;
  X509Ptr cert;
  EvpPkeyPtr key;
};

// Reads dir/ca.crt and dir/ca.key and checks that they belong together.
CaMaterial loadCa(const std::string& dir);

// Throws std::invalid_argument unless 1 <= days <= kMaxDays.
void validateDays(int days);

// One line of revoked.txt: "<hex serial> <YYYYMMDDHHMMSSZ>".
struct RevokedEntry {
  std::string serial_hex;
  std::string revoked_at;
};

// The entries of dir/revoked.txt, serials normalised; throws
// std::runtime_error naming a malformed line.
std::vector<RevokedEntry> readRevoked(const std::string& ca_dir);

// Signs a fresh dir/crl.pem listing every serial in dir/revoked.txt, with the
// next CRL number from dir/crlnumber.
void writeCrl(const CaMaterial& ca);

}  // namespace tapestry::tools::detail
