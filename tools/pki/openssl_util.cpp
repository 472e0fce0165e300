#include "tools/pki/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstdio>

#include "tools/pki/pki_files.h"

namespace tapestry::tools::detail {
namespace {

constexpr int kSerialBytes = 16;
constexpr long kClockSkewSeconds = 5 * 60;

std::string bioContents(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

BioPtr memoryBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "cannot allocate an OpenSSL memory buffer", "the process is out of memory");
  return bio;
}

BioPtr readOnlyBio(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  check(bio != nullptr, "cannot allocate an OpenSSL memory buffer", "the process is out of memory");
  return bio;
}

}  // namespace

std::runtime_error opensslError(const std::string& what, const std::string& hint) {
  std::string details;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    details += details.empty() ? "" : "; ";
    details += buffer;
  }
  if (details.empty()) details = "no OpenSSL error detail";
  std::string message = what + ": " + details;
  if (!hint.empty()) message += "; " + hint;
  return std::runtime_error(message);
}

void check(bool ok, const std::string& what, const std::string& hint) {
  if (!ok) throw opensslError(what, hint);
}

EvpPkeyPtr generateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "cannot generate an ECDSA P-256 key",
        "check that the OpenSSL default provider is available");
  return key;
}

Asn1IntegerPtr randomSerial() {
  unsigned char bytes[kSerialBytes];
  BignumPtr number(BN_new());
  check(number != nullptr, "cannot allocate a serial number", "the process is out of memory");
  do {
    check(RAND_bytes(bytes, sizeof(bytes)) == 1, "cannot draw a random serial number",
          "the OpenSSL random generator is not seeded; check /dev/urandom");
    check(BN_bin2bn(bytes, sizeof(bytes), number.get()) != nullptr, "cannot build a serial number");
  } while (BN_is_zero(number.get()));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(number.get(), nullptr));
  check(serial != nullptr, "cannot encode a serial number");
  return serial;
}

std::string serialToHex(const ASN1_INTEGER* serial) {
  BignumPtr number(ASN1_INTEGER_to_BN(serial, nullptr));
  check(number != nullptr, "cannot read a certificate serial number");
  char* hex = BN_bn2hex(number.get());
  check(hex != nullptr, "cannot format a certificate serial number");
  std::string text(hex);
  OPENSSL_free(hex);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Asn1IntegerPtr serialFromHex(const std::string& hex) {
  if (hex.empty() || hex.size() > 40) return nullptr;
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return nullptr;
  }
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) == 0) return nullptr;
  BignumPtr number(raw);
  return Asn1IntegerPtr(BN_to_ASN1_INTEGER(number.get(), nullptr));
}

std::string formatGeneralizedTime(std::time_t time) {
  std::tm utc{};
  gmtime_r(&time, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%d%H%M%SZ", &utc);
  return buffer;
}

Asn1TimePtr parseTime(const std::string& text) {
  Asn1TimePtr time(ASN1_TIME_new());
  if (time == nullptr || ASN1_TIME_set_string_X509(time.get(), text.c_str()) != 1) return nullptr;
  return time;
}

std::string certificateToPem(X509* cert) {
  BioPtr bio = memoryBio();
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "cannot encode a certificate as PEM");
  return bioContents(bio.get());
}

std::string privateKeyToPem(EVP_PKEY* key) {
  BioPtr bio = memoryBio();
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "cannot encode a private key as PEM");
  return bioContents(bio.get());
}

std::string crlToPem(X509_CRL* crl) {
  BioPtr bio = memoryBio();
  check(PEM_write_bio_X509_CRL(bio.get(), crl) == 1, "cannot encode a CRL as PEM");
  return bioContents(bio.get());
}

X509Ptr readCertificatePem(const std::string& path, const std::string& hint) {
  std::string text = readTextFile(path, hint);
  BioPtr bio = readOnlyBio(text);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  check(cert != nullptr, path + " is not a PEM certificate", hint);
  return cert;
}

EvpPkeyPtr readPrivateKeyPem(const std::string& path, const std::string& hint) {
  std::string text = readTextFile(path, hint);
  BioPtr bio = readOnlyBio(text);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  OPENSSL_cleanse(text.data(), text.size());
  check(key != nullptr, path + " is not an unencrypted PEM private key", hint);
  return key;
}

X509CrlPtr readCrlPem(const std::string& path, const std::string& hint) {
  std::string text = readTextFile(path, hint);
  BioPtr bio = readOnlyBio(text);
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  check(crl != nullptr, path + " is not a PEM CRL", hint);
  return crl;
}

X509NamePtr makeName(const std::string& common_name, const std::string& organization) {
  X509NamePtr name(X509_NAME_new());
  check(name != nullptr, "cannot allocate a certificate name", "the process is out of memory");
  auto add = [&](int nid, const std::string& value) {
    check(X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                     0) == 1,
          "cannot put '" + value + "' into a certificate name",
          "use at most 64 printable characters");
  };
  add(NID_commonName, common_name);
  add(NID_organizationName, organization);
  return name;
}

std::string nameEntry(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  check(length >= 0, "cannot decode a certificate name entry");
  std::string text(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return text;
}

void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  check(extension != nullptr, std::string("cannot build the ") + OBJ_nid2sn(nid) + " extension");
  check(X509_add_ext(cert, extension.get(), -1) == 1,
        std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension");
}

void setValidity(X509* cert, int days) {
  check(X509_gmtime_adj(X509_getm_notBefore(cert), -kClockSkewSeconds) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, nullptr) != nullptr,
        "cannot set the certificate validity period");
}

void signCertificate(X509* cert, EVP_PKEY* key) {
  check(X509_sign(cert, key, EVP_sha256()) > 0, "cannot sign the certificate",
        "check that the CA key matches ca.crt");
}

}  // namespace tapestry::tools::detail
