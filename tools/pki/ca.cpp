#include <stdexcept>

#include "tools/pki/ca_store.h"
#include "tools/pki/pki.h"
#include "tools/pki/pki_files.h"

namespace tapestry::tools {
namespace {

using detail::check;
using detail::joinPath;

constexpr size_t kMaxCaNameBytes = 64;

void validateCaName(const std::string& name) {
  bool printable = !name.empty() && name.size() <= kMaxCaNameBytes &&
                   name.find_first_not_of(' ') != std::string::npos;
  for (unsigned char c : name) printable = printable && c >= 0x20 && c != 0x7f;
  if (!printable) {
    throw std::invalid_argument("invalid CA name '" + name +
                                "': use 1 to 64 bytes of printable text (spaces allowed, no control "
                                "characters), e.g. --name \"Tapestry Consortium CA\"");
  }
}

detail::X509Ptr buildCaCertificate(const CaOptions& options, EVP_PKEY* key) {
  detail::X509Ptr cert(X509_new());
  check(cert != nullptr, "cannot allocate the CA certificate", "the process is out of memory");
  detail::Asn1IntegerPtr serial = detail::randomSerial();
  detail::X509NamePtr name = detail::makeName(options.name, options.name);
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            X509_set_serialNumber(cert.get(), serial.get()) == 1 &&
            X509_set_subject_name(cert.get(), name.get()) == 1 &&
            X509_set_issuer_name(cert.get(), name.get()) == 1 &&
            X509_set_pubkey(cert.get(), key) == 1,
        "cannot fill in the CA certificate");
  detail::setValidity(cert.get(), options.days);

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  detail::addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  detail::addExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  detail::addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  detail::addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  detail::signCertificate(cert.get(), key);
  return cert;
}

}  // namespace

namespace detail {

void validateDays(int days) {
  if (days < 1 || days > kMaxDays) {
    throw std::invalid_argument("validity of " + std::to_string(days) +
                                " days is out of range: pass --days from 1 to " +
                                std::to_string(kMaxDays));
  }
}

CaMaterial loadCa(const std::string& dir) {
  const std::string hint = "pass the directory made by `tapestry ca init` as --ca (a new CA would not be the "
                           "consortium's: every certificate it signed would stop working)";
  CaMaterial ca;
  ca.dir = dir;
  ca.cert = readCertificatePem(joinPath(dir, kCaCertFile), hint);
  // The README suggests keeping ca.key offline: a directory with the
  // certificate but not the key most likely is such a CA.
  ca.key = readPrivateKeyPem(joinPath(dir, kCaKeyFile),
                             "this command signs with the CA's private key: bring " + std::string(kCaKeyFile) +
                                 " back from where it is kept offline into " + dir +
                                 " (or run the command where the key is); do not make a new CA, which would "
                                 "invalidate every certificate the consortium holds");
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    throw opensslError(joinPath(dir, kCaKeyFile) + " does not match " + joinPath(dir, kCaCertFile),
                       "restore both files of the CA directory from the same backup");
  }
  return ca;
}

}  // namespace detail

void initCa(const CaOptions& options) {
  if (options.dir.empty()) throw std::invalid_argument("CA directory is empty: pass --dir DIR");
  validateCaName(options.name);
  detail::validateDays(options.days);

  const std::string key_path = joinPath(options.dir, detail::kCaKeyFile);
  const std::string exists = "CA already exists in " + options.dir + "; use a new --dir or remove it";
  detail::ensureDirectory(options.dir, 0700);
  detail::FileLock lock(joinPath(options.dir, detail::kLockFile));
  if (detail::pathExists(key_path)) throw std::runtime_error(exists);

  detail::CaMaterial ca;
  ca.dir = options.dir;
  ca.key = detail::generateP256Key();
  ca.cert = buildCaCertificate(options, ca.key.get());

  std::string key_pem = detail::privateKeyToPem(ca.key.get());
  try {
    detail::writeNewFile(key_path, key_pem, 0600, "use a new --dir or remove it");
  } catch (const std::runtime_error&) {
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    if (detail::pathExists(key_path)) throw std::runtime_error(exists);
    throw;
  }
  OPENSSL_cleanse(key_pem.data(), key_pem.size());

  const char* written[] = {detail::kCaCertFile, detail::kRevokedFile, detail::kCrlNumberFile,
                           detail::kCrlFile};
  try {
    detail::writeFileAtomic(joinPath(options.dir, detail::kCaCertFile),
                            detail::certificateToPem(ca.cert.get()), 0644);
    detail::writeFileAtomic(joinPath(options.dir, detail::kRevokedFile), "", 0644);
    detail::removeQuietly(joinPath(options.dir, detail::kCrlNumberFile));
    detail::writeCrl(ca);
  } catch (...) {
    for (const char* file : written) detail::removeQuietly(joinPath(options.dir, file));
    detail::removeQuietly(key_path);
    throw;
  }
}

}  // namespace tapestry::tools
