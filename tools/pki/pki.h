#pragma once
// The consortium PKI: one CA directory that signs coordinator and worker
// certificates and publishes a CRL, all through the OpenSSL 3 API. Keys are
// ECDSA P-256, signatures SHA-256. Every function throws std::runtime_error
// (std::invalid_argument for bad names or values) with a message that says
// what to do; runCaCommand() turns those into exit codes.
//
// CA directory layout: ca.crt (0644), ca.key (0600), crl.pem (0644),
// revoked.txt ("<hex serial> <YYYYMMDDHHMMSSZ>" per line) and crlnumber.
#include <iosfwd>
#include <string>
#include <vector>

namespace tapestry::tools {

struct CaOptions {
  std::string dir;
  std::string name = "Tapestry Consortium CA";
  int days = 3650;
};

// Creates dir (0700 if new) with ca.crt, ca.key, an empty signed crl.pem and
// the revocation index. Throws if dir/ca.key already exists.
void initCa(const CaOptions& options);

enum class CertKind { kCoordinator, kWorker };

struct IssueOptions {
  std::string ca_dir;
  std::string out_dir;
  std::string name;
  CertKind kind = CertKind::kWorker;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  int days = 825;
  // Another certificate for a name that holds a live one (a lost key, a
  // renewal). Without it, issuing such a name is refused.
  bool renew = false;
};

struct IssuedFiles {
  std::string cert_path;
  std::string key_path;
  // With renew: the serials of the name's earlier certificates that are
  // still live (neither revoked nor expired), to revoke once it is replaced.
  std::vector<std::string> still_live;
};

// Writes out_dir/<name>.crt (0644) and out_dir/<name>.key (0600, created
// exclusively). Coordinators get EKU serverAuth+clientAuth and a SAN
// (default DNS:localhost, IP:127.0.0.1, IP:::1); workers get EKU clientAuth
// and a SAN only when names or addresses are given. The name must be 1..64
// characters of [A-Za-z0-9._-]. Refuses to overwrite an existing key or cert.
IssuedFiles issueCertificate(const IssueOptions& options);

// Adds the certificate's serial to ca_dir/revoked.txt (idempotent) and
// rewrites ca_dir/crl.pem. Refuses certificates this CA did not sign.
// False when the serial was revoked already.
bool revokeCertificate(const std::string& ca_dir, const std::string& cert_path);
// The same by serial (hex), for a certificate whose file is gone; refuses a
// serial the CA's issued.txt does not list.
bool revokeSerial(const std::string& ca_dir, const std::string& serial_hex);

// Re-signs ca_dir/crl.pem from revoked.txt with lastUpdate = now and
// nextUpdate = now + 30 days. Run it before the published CRL expires.
void refreshCrl(const std::string& ca_dir);

// Returns the lowercase hex serial of the PEM certificate at cert_path.
std::string certificateSerialHex(const std::string& cert_path);

// `tapestry ca ...`; args are the words after "ca":
//   init --dir D [--name N] [--days N]
//   issue --ca D --out O --name N --coordinator|--worker [--dns H]... [--ip A]... [--days N]
//   revoke --ca D --cert F
//   crl --ca D
// Options also accept the --opt=value form. Returns 0 on success, 2 on a
// usage error (message and usage on err), 1 on any other failure. Never throws.
int runCaCommand(const std::vector<std::string>& args);
int runCaCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tapestry::tools
