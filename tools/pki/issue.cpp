#include <openssl/crypto.h>
#include <openssl/err.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include "tools/pki/ca_store.h"
#include "tools/pki/issued_index.h"
#include "tools/pki/pki.h"
#include "tools/pki/pki_files.h"

namespace tapestry::tools {
namespace {

using detail::check;

constexpr size_t kMaxNameLength = 64;
constexpr size_t kMaxDnsNameLength = 253;
constexpr size_t kMaxDnsLabelLength = 63;

bool isNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

void validateCertificateName(const std::string& name) {
  bool valid = !name.empty() && name.size() <= kMaxNameLength && name != "." && name != "..";
  for (char c : name) valid = valid && isNameChar(c);
  if (!valid) {
    throw std::invalid_argument("invalid certificate name '" + name +
                                "': a name must be 1 to 64 characters of A-Z a-z 0-9 . _ - "
                                "(no spaces or slashes), e.g. --name worker-01");
  }
}

// Host names per RFC 1123, with an optional leading "*." wildcard label.
void validateDnsName(const std::string& host) {
  std::string rest = host.rfind("*.", 0) == 0 ? host.substr(2) : host;
  bool valid = !rest.empty() && host.size() <= kMaxDnsNameLength;
  size_t start = 0;
  while (valid && start <= rest.size()) {
    size_t end = rest.find('.', start);
    if (end == std::string::npos) end = rest.size();
    std::string label = rest.substr(start, end - start);
    valid = !label.empty() && label.size() <= kMaxDnsLabelLength && label.front() != '-' &&
            label.back() != '-';
    for (char c : label) valid = valid && (isNameChar(c) && c != '.' && c != '_');
    start = end + 1;
  }
  if (!valid) {
    throw std::invalid_argument("invalid DNS name '" + host +
                                "': use dot-separated labels of A-Z a-z 0-9 - (at most 63 "
                                "characters each, 253 in all), e.g. --dns coordinator.example.org");
  }
}

detail::GeneralNamesPtr buildAltNames(const IssueOptions& options) {
  std::vector<std::string> dns = options.dns_names;
  std::vector<std::string> ips = options.ip_addresses;
  if (options.kind == CertKind::kCoordinator && dns.empty() && ips.empty()) {
    dns = {"localhost"};
    ips = {"127.0.0.1", "::1"};
  }
  if (dns.empty() && ips.empty()) return nullptr;
  detail::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  check(names != nullptr, "cannot allocate the subjectAltName list", "the process is out of memory");
  auto add = [&](int type, const std::string& value) {
    detail::GeneralNamePtr name(a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, value.c_str(), 0));
    if (name == nullptr && type == GEN_IPADD) {
      ERR_clear_error();
      throw std::invalid_argument("invalid IP address '" + value +
                                  "': use an IPv4 or IPv6 literal, e.g. --ip 10.0.0.5 or --ip ::1");
    }
    check(name != nullptr, "cannot encode subjectAltName entry '" + value + "'");
    check(sk_GENERAL_NAME_push(names.get(), name.get()) > 0, "cannot extend the subjectAltName list");
    name.release();
  };
  for (const std::string& host : dns) {
    validateDnsName(host);
    add(GEN_DNS, host);
  }
  for (const std::string& ip : ips) add(GEN_IPADD, ip);
  return names;
}

void checkWithinCaLifetime(const detail::CaMaterial& ca, int days) {
  int ca_days = 0;
  int ca_seconds = 0;
  check(ASN1_TIME_diff(&ca_days, &ca_seconds, nullptr, X509_get0_notAfter(ca.cert.get())) == 1,
        "cannot read the CA certificate's expiry date");
  if (ca_days < 0 || ca_seconds < 0 || (ca_days == 0 && ca_seconds == 0)) {
    throw std::runtime_error("the CA certificate in " + ca.dir +
                             " has expired; create a new CA with `tapestry ca init`");
  }
  if (days > ca_days) {
    throw std::invalid_argument("a certificate valid for " + std::to_string(days) +
                                " days would outlive the CA in " + ca.dir + ", which expires in " +
                                std::to_string(ca_days) + " days: pass --days " +
                                std::to_string(ca_days) + " or less");
  }
}

detail::X509Ptr buildLeaf(const IssueOptions& options, const detail::CaMaterial& ca, EVP_PKEY* key,
                          GENERAL_NAMES* alt_names) {
  const X509_NAME* ca_subject = X509_get_subject_name(ca.cert.get());
  std::string organization = detail::nameEntry(ca_subject, NID_organizationName);
  if (organization.empty()) organization = detail::nameEntry(ca_subject, NID_commonName);

  detail::X509Ptr cert(X509_new());
  check(cert != nullptr, "cannot allocate a certificate", "the process is out of memory");
  detail::Asn1IntegerPtr serial = detail::randomSerial();
  detail::X509NamePtr subject = detail::makeName(options.name, organization);
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            X509_set_serialNumber(cert.get(), serial.get()) == 1 &&
            X509_set_subject_name(cert.get(), subject.get()) == 1 &&
            X509_set_issuer_name(cert.get(), ca_subject) == 1 &&
            X509_set_pubkey(cert.get(), key) == 1,
        "cannot fill in the certificate for " + options.name);
  detail::setValidity(cert.get(), options.days);

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.cert.get(), cert.get(), nullptr, nullptr, 0);
  detail::addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  detail::addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  detail::addExtension(cert.get(), &ctx, NID_ext_key_usage,
                       options.kind == CertKind::kCoordinator ? "serverAuth,clientAuth"
                                                              : "clientAuth");
  detail::addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  detail::addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (alt_names != nullptr) {
    check(X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, alt_names, 0, X509V3_ADD_DEFAULT) == 1,
          "cannot add the subjectAltName extension");
  }
  detail::signCertificate(cert.get(), ca.key.get());
  return cert;
}

// The serials of `name`'s certificates in the CA's record that are neither
// revoked nor expired.
std::vector<std::string> liveSerialsOf(const std::string& ca_dir, const std::string& name) {
  std::vector<std::string> revoked;
  for (const detail::RevokedEntry& entry : detail::readRevoked(ca_dir)) revoked.push_back(entry.serial_hex);
  std::vector<std::string> live;
  const auto now = static_cast<int64_t>(std::time(nullptr));
  for (const detail::IssuedEntry& entry : detail::readIssued(ca_dir)) {
    if (entry.name != name || entry.not_after <= now) continue;
    if (std::find(revoked.begin(), revoked.end(), entry.serial_hex) == revoked.end()) live.push_back(entry.serial_hex);
  }
  return live;
}

}  // namespace

IssuedFiles issueCertificate(const IssueOptions& options) {
  validateCertificateName(options.name);
  detail::validateDays(options.days);
  if (options.ca_dir.empty()) throw std::invalid_argument("CA directory is empty: pass --ca DIR");
  if (options.out_dir.empty()) throw std::invalid_argument("output directory is empty: pass --out DIR");
  detail::GeneralNamesPtr alt_names = buildAltNames(options);

  detail::CaMaterial ca = detail::loadCa(options.ca_dir);
  checkWithinCaLifetime(ca, options.days);

  IssuedFiles files;
  files.cert_path = detail::joinPath(options.out_dir, options.name + ".crt");
  files.key_path = detail::joinPath(options.out_dir, options.name + ".key");
  const std::string hint = "refusing to overwrite it: remove it first or choose another --name";
  detail::ensureDirectory(options.out_dir, 0700);
  if (detail::pathExists(files.key_path)) {
    throw std::runtime_error(files.key_path + " already exists; " + hint);
  }
  if (detail::pathExists(files.cert_path)) {
    throw std::runtime_error(files.cert_path + " already exists; " + hint);
  }

  detail::FileLock lock(detail::joinPath(options.ca_dir, detail::kLockFile));
  const std::vector<std::string> live = liveSerialsOf(options.ca_dir, options.name);
  if (!live.empty() && !options.renew) {
    throw std::runtime_error(
        "the CA in " + options.ca_dir + " has already issued '" + options.name + "' a certificate that is still " +
        "valid (serial " + live.front() + "): two machines holding one identity lock each other out of the " +
        "federation, and revoking one leaves the other valid. For another member choose another --name; to " +
        "replace a lost or expiring certificate pass --renew, then revoke the old one once the new one is in " +
        "place (tapestry ca revoke --ca " + options.ca_dir + " --serial " + live.front() + ")");
  }

  detail::EvpPkeyPtr key = detail::generateP256Key();
  detail::X509Ptr cert = buildLeaf(options, ca, key.get(), alt_names.get());
  std::string cert_pem = detail::certificateToPem(cert.get());
  std::string key_pem = detail::privateKeyToPem(key.get());
  try {
    detail::writeNewFile(files.key_path, key_pem, 0600, hint);
  } catch (...) {
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    throw;
  }
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  try {
    detail::writeNewFile(files.cert_path, cert_pem, 0644, hint);
    std::tm not_after{};
    check(ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &not_after) == 1, "cannot read the certificate's expiry");
    detail::appendIssued(options.ca_dir, {detail::serialToHex(X509_get0_serialNumber(cert.get())),
                                          static_cast<int64_t>(timegm(&not_after)),
                                          options.kind == CertKind::kCoordinator ? "coordinator" : "worker",
                                          options.name});
  } catch (...) {
    detail::removeQuietly(files.cert_path);
    detail::removeQuietly(files.key_path);
    throw;
  }
  files.still_live = live;
  return files;
}

}  // namespace tapestry::tools
