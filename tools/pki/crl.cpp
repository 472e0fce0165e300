#include <openssl/err.h>

#include <ctime>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "tools/pki/ca_store.h"
#include "tools/pki/issued_index.h"
#include "tools/pki/pki.h"
#include "tools/pki/pki_files.h"

namespace tapestry::tools {
namespace detail {

std::vector<RevokedEntry> readRevoked(const std::string& ca_dir) {
  const std::string path = joinPath(ca_dir, kRevokedFile);
  std::vector<RevokedEntry> entries;
  for (const auto& [number, line] : recordLines(path)) {
    std::istringstream fields(line);
    RevokedEntry entry;
    std::string extra;
    fields >> entry.serial_hex >> entry.revoked_at;
    if (fields.fail() || (fields >> extra) || serialFromHex(entry.serial_hex) == nullptr ||
        parseTime(entry.revoked_at) == nullptr) {
      ERR_clear_error();
      throw std::runtime_error(path + " line " + std::to_string(number) +
                               " is malformed: expected '<hex serial> <YYYYMMDDHHMMSSZ>'; fix or "
                               "remove that line, then run `tapestry ca crl --ca " + ca_dir + "`");
    }
    entry.serial_hex = serialToHex(serialFromHex(entry.serial_hex).get());
    entries.push_back(entry);
  }
  return entries;
}

}  // namespace detail

namespace {

using detail::check;
using detail::joinPath;
using detail::RevokedEntry;

long nextCrlNumber(const std::string& ca_dir) {
  const std::string path = joinPath(ca_dir, detail::kCrlNumberFile);
  if (!detail::pathExists(path)) return 1;
  std::istringstream text(detail::readTextFile(path, "check the permissions of the CA directory"));
  long last = 0;
  if (!(text >> last) || last < 0) {
    throw std::runtime_error(path + " does not hold a CRL number; write the last CRL number (or 0) "
                             "into it");
  }
  return last + 1;
}

void addRevoked(X509_CRL* crl, const RevokedEntry& entry) {
  detail::X509RevokedPtr revoked(X509_REVOKED_new());
  detail::Asn1IntegerPtr serial = detail::serialFromHex(entry.serial_hex);
  detail::Asn1TimePtr when = detail::parseTime(entry.revoked_at);
  check(revoked != nullptr && serial != nullptr && when != nullptr &&
            X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) == 1 &&
            X509_REVOKED_set_revocationDate(revoked.get(), when.get()) == 1,
        "cannot build the CRL entry for serial " + entry.serial_hex);
  check(X509_CRL_add0_revoked(crl, revoked.get()) == 1,
        "cannot add serial " + entry.serial_hex + " to the CRL");
  revoked.release();
}

void addCrlExtensions(X509_CRL* crl, X509* ca_cert, long number) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert, nullptr, nullptr, crl, 0);
  detail::X509ExtensionPtr key_id(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  check(key_id != nullptr && X509_CRL_add_ext(crl, key_id.get(), -1) == 1,
        "cannot add the authorityKeyIdentifier to the CRL");
  detail::Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  check(crl_number != nullptr && ASN1_INTEGER_set_int64(crl_number.get(), number) == 1 &&
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number.get(), 0, 0) == 1,
        "cannot add the CRL number");
}

}  // namespace

namespace detail {

void writeCrl(const CaMaterial& ca) {
  std::vector<RevokedEntry> entries = detail::readRevoked(ca.dir);
  long number = nextCrlNumber(ca.dir);

  X509CrlPtr crl(X509_CRL_new());
  check(crl != nullptr, "cannot allocate a CRL", "the process is out of memory");
  std::time_t now = std::time(nullptr);
  Asn1TimePtr last_update(ASN1_TIME_set(nullptr, now));
  Asn1TimePtr next_update(ASN1_TIME_adj(nullptr, now, kCrlValidityDays, 0));
  check(last_update != nullptr && next_update != nullptr &&
            X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) == 1 &&
            X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) == 1 &&
            X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) == 1 &&
            X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) == 1,
        "cannot fill in the CRL");
  for (const RevokedEntry& entry : entries) addRevoked(crl.get(), entry);
  check(X509_CRL_sort(crl.get()) == 1, "cannot sort the CRL");
  addCrlExtensions(crl.get(), ca.cert.get(), number);
  check(X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) > 0, "cannot sign the CRL",
        "check that " + joinPath(ca.dir, kCaKeyFile) + " is intact");

  writeFileAtomic(joinPath(ca.dir, kCrlNumberFile), std::to_string(number) + "\n", 0644);
  writeFileAtomic(joinPath(ca.dir, kCrlFile), crlToPem(crl.get()), 0644);
}

// Adds `serial` (normalised) to revoked.txt unless it is there, and re-signs
// the CRL; the caller holds the CA's lock. False when it was revoked already.
bool revokeSerialLocked(const detail::CaMaterial& ca, const std::string& serial) {
  bool already = false;
  for (const RevokedEntry& entry : detail::readRevoked(ca.dir)) already = already || entry.serial_hex == serial;
  if (!already) {
    const std::string path = joinPath(ca.dir, detail::kRevokedFile);
    std::string text;
    if (detail::pathExists(path)) text = detail::readTextFile(path, "check the CA directory");
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += serial + " " + detail::formatGeneralizedTime(std::time(nullptr)) + "\n";
    detail::writeFileAtomic(path, text, 0644);
  }
  detail::writeCrl(ca);
  return !already;
}

}  // namespace detail

bool revokeCertificate(const std::string& ca_dir, const std::string& cert_path) {
  detail::CaMaterial ca = detail::loadCa(ca_dir);
  detail::X509Ptr cert = detail::readCertificatePem(
      cert_path, "pass a certificate file written by `tapestry ca issue`");
  if (X509_cmp(cert.get(), ca.cert.get()) == 0) {
    throw std::runtime_error(cert_path + " is the CA certificate itself; to retire the CA, "
                                "create a new one with `tapestry ca init` and reissue");
  }
  if (X509_verify(cert.get(), X509_get0_pubkey(ca.cert.get())) != 1) {
    ERR_clear_error();
    throw std::runtime_error(cert_path + " was not signed by the CA in " + ca_dir +
                                "; pass the --ca directory that issued it");
  }

  detail::FileLock lock(joinPath(ca_dir, detail::kLockFile));
  return revokeSerialLocked(ca, detail::serialToHex(X509_get0_serialNumber(cert.get())));
}

bool revokeSerial(const std::string& ca_dir, const std::string& serial_hex) {
  detail::Asn1IntegerPtr parsed = detail::serialFromHex(serial_hex);
  if (parsed == nullptr) {
    ERR_clear_error();
    throw std::invalid_argument("'" + serial_hex + "' is not a serial number: pass the hexadecimal serial that "
                                "`tapestry ca issue` printed");
  }
  const std::string serial = detail::serialToHex(parsed.get());
  detail::CaMaterial ca = detail::loadCa(ca_dir);
  detail::FileLock lock(joinPath(ca_dir, detail::kLockFile));
  bool known = false;
  for (const detail::IssuedEntry& entry : detail::readIssued(ca_dir)) known = known || entry.serial_hex == serial;
  if (!known) {
    throw std::runtime_error("the CA in " + ca_dir + " has no record of issuing serial " + serial + " (" +
                             joinPath(ca_dir, detail::kIssuedFile) +
                             " lists what it issued since it began keeping one); check the serial, or revoke "
                             "with --cert FILE");
  }
  return revokeSerialLocked(ca, serial);
}

void refreshCrl(const std::string& ca_dir) {
  detail::CaMaterial ca = detail::loadCa(ca_dir);
  detail::FileLock lock(joinPath(ca_dir, detail::kLockFile));
  detail::writeCrl(ca);
}

std::string certificateSerialHex(const std::string& cert_path) {
  detail::X509Ptr cert =
      detail::readCertificatePem(cert_path, "pass a PEM certificate file");
  return detail::serialToHex(X509_get0_serialNumber(cert.get()));
}

}  // namespace tapestry::tools
