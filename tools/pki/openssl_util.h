#pragma once
// Internal to tools/pki: unique_ptr ownership for every OpenSSL object the
// PKI touches, plus the few conversions (PEM, serials, times) the CA, issue
// and CRL code share. Failures throw std::runtime_error carrying the drained
// OpenSSL error queue and a hint for the user.
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>

namespace tapestry::tools::detail {

template <typename T, void (*Free)(T*)>
struct OpensslDeleter {
  void operator()(T* object) const { Free(object); }
};
template <typename T, void (*Free)(T*)>
using OpensslPtr = std::unique_ptr<T, OpensslDeleter<T, Free>>;

using Asn1IntegerPtr = OpensslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1OctetStringPtr = OpensslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Asn1TimePtr = OpensslPtr<ASN1_TIME, ASN1_TIME_free>;
using BignumPtr = OpensslPtr<BIGNUM, BN_free>;
using BioPtr = OpensslPtr<BIO, BIO_free_all>;
using EvpPkeyPtr = OpensslPtr<EVP_PKEY, EVP_PKEY_free>;
using ExtendedKeyUsagePtr = OpensslPtr<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using GeneralNamePtr = OpensslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using GeneralNamesPtr = OpensslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using X509CrlPtr = OpensslPtr<X509_CRL, X509_CRL_free>;
using X509ExtensionPtr = OpensslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509NamePtr = OpensslPtr<X509_NAME, X509_NAME_free>;
using X509Ptr = OpensslPtr<X509, X509_free>;
using X509RevokedPtr = OpensslPtr<X509_REVOKED, X509_REVOKED_free>;
using X509StoreCtxPtr = OpensslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509StorePtr = OpensslPtr<X509_STORE, X509_STORE_free>;

// "<what>: <OpenSSL errors>; <hint>". Drains the thread's error queue.
std::runtime_error opensslError(const std::string& what, const std::string& hint);

// Throws opensslError(what, hint) when ok is false.
void check(bool ok, const std::string& what, const std::string& hint = "");

EvpPkeyPtr generateP256Key();

// A uniformly random, non-zero, positive 128-bit serial.
Asn1IntegerPtr randomSerial();
std::string serialToHex(const ASN1_INTEGER* serial);
// Parses lowercase or uppercase hex; returns nullptr when text is not hex.
Asn1IntegerPtr serialFromHex(const std::string& hex);

// "YYYYMMDDHHMMSSZ" (GeneralizedTime, UTC) for time, and its inverse into
// an ASN1_TIME; the inverse returns nullptr for malformed text.
std::string formatGeneralizedTime(std::time_t time);
Asn1TimePtr parseTime(const std::string& text);

std::string certificateToPem(X509* cert);
std::string privateKeyToPem(EVP_PKEY* key);
std::string crlToPem(X509_CRL* crl);

X509Ptr readCertificatePem(const std::string& path, const std::string& hint);
EvpPkeyPtr readPrivateKeyPem(const std::string& path, const std::string& hint);
X509CrlPtr readCrlPem(const std::string& path, const std::string& hint);

// CN=common_name, O=organization (UTF-8).
X509NamePtr makeName(const std::string& common_name, const std::string& organization);

// Text of the first entry with nid in name, or "" when there is none.
std::string nameEntry(const X509_NAME* name, int nid);

// Builds an extension from OpenSSL's config syntax ("critical,CA:FALSE") in
// ctx and adds it to cert.
void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value);

// notBefore = now - 5 minutes (clock skew between hosts), notAfter = now + days.
void setValidity(X509* cert, int days);

// Signs cert with key using SHA-256 (ECDSA for P-256 keys).
void signCertificate(X509* cert, EVP_PKEY* key);

}  // namespace tapestry::tools::detail
