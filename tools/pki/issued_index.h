#pragma once
// Internal to tools/pki: the CA's record of what it issued, ca_dir/issued.txt,
// one line per certificate: "<hex serial> <notAfter, epoch seconds> <kind>
// <name>". It lets `ca issue` refuse a second live certificate for one
// identity and `ca revoke --serial` revoke a certificate whose file is gone.
// Callers hold the CA directory's FileLock. A CA made before the record
// existed simply has none for its earlier certificates.
#include <cstdint>
#include <string>
#include <vector>

namespace tapestry::tools::detail {

inline constexpr const char* kIssuedFile = "issued.txt";

struct IssuedEntry {
  std::string serial_hex;
  int64_t not_after = 0;  // epoch seconds
  std::string kind;       // "coordinator" or "worker"
  std::string name;
};

// Throws std::runtime_error naming the line of a malformed record.
std::vector<IssuedEntry> readIssued(const std::string& ca_dir);
void appendIssued(const std::string& ca_dir, const IssuedEntry& entry);

}  // namespace tapestry::tools::detail
