#include "common/net/certificate_checks_impl.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>
#include <stdexcept>

namespace tapestry::common::net {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;

void freeCertificates(STACK_OF(X509)* certs) { sk_X509_pop_free(certs, X509_free); }
using CertStackPtr = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), freeCertificates>>;

std::string utc(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "an unreadable date";
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M UTC", &tm);
  return out;
}

std::string nameText(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "an unnamed subject";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return "an unreadable name";
  std::string text(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return text;
}

// "serverAuth, clientAuth"; "" when the certificate has no extended key usage.
std::string extendedKeyUsage(X509* cert) {
  EkuPtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (!eku) return "";
  std::string text;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    const ASN1_OBJECT* usage = sk_ASN1_OBJECT_value(eku.get(), i);
    char name[80];
    const int nid = OBJ_obj2nid(usage);
    if (nid != NID_undef) std::snprintf(name, sizeof name, "%s", OBJ_nid2sn(nid));
    else OBJ_obj2txt(name, sizeof name, usage, 1);
    text += (text.empty() ? "" : ", ") + std::string(name);
  }
  return text;
}

int sslIndex() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* cert, CRYPTO_EX_DATA*, int, long, void*) {
        X509_free(static_cast<X509*>(cert));
      });
  return index;
}

}  // namespace

std::string subjectCommonName(X509* cert) { return nameText(X509_get_subject_name(cert)); }

std::string serialHex(X509* cert) {
  BIGNUM* number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (!number) return "?";
  char* hex = BN_bn2hex(number);
  BN_free(number);
  if (!hex) return "?";
  std::string text(hex);
  OPENSSL_free(hex);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

void checkOwnCertificate(SSL_CTX* ctx, const TlsSettings& s, CertificateRole role) {
  const bool server = role == CertificateRole::kServer;
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (!cert) throw std::runtime_error("no certificate loaded from '" + s.cert_file + "' (tls.cert)");
  const std::string file = "the certificate in '" + s.cert_file + "' (tls.cert, '" + subjectCommonName(cert) + "')";
  const std::string dates = "valid from " + utc(X509_get0_notBefore(cert)) + " to " + utc(X509_get0_notAfter(cert));
  const std::string consequence =
      server ? "every worker would refuse this coordinator" : "the coordinator would refuse this worker";
  const std::string issue = server ? "`tapestry ca issue --ca <CA directory> --out <dir> --name <name> --coordinator "
                                     "--dns <host name>`"
                                   : "`tapestry ca issue --ca <CA directory> --out <dir> --name <member> --worker`";
  const std::string reissue = server ? "issue a new one with " + issue
                                     : "ask the consortium operator for a new one (" + issue + ")";
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
    throw std::runtime_error(file + " expired on " + utc(X509_get0_notAfter(cert)) + " (" + dates + "), so " +
                             consequence + "; " + reissue);
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
    throw std::runtime_error(file + " is not valid before " + utc(X509_get0_notBefore(cert)) + " (" + dates +
                             "), so " + consequence + "; check this machine's clock, or wait until then");

  StoreCtxPtr verify(X509_STORE_CTX_new());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  if (!verify || X509_STORE_CTX_init(verify.get(), SSL_CTX_get_cert_store(ctx), cert, chain) != 1)
    throw std::runtime_error("cannot check " + file + ": out of memory");
  if (X509_verify_cert(verify.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(verify.get());
    const std::string reason = X509_verify_cert_error_string(error);
    ERR_clear_error();
    const bool not_ours = error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                          error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                          error == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
                          error == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                          error == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || error == X509_V_ERR_CERT_SIGNATURE_FAILURE;
    if (not_ours)
      throw std::runtime_error(file + ", issued by '" + nameText(X509_get_issuer_name(cert)) +
                               "', does not chain to the CA in '" + s.ca_file + "' (tls.ca): " + reason + "; so " +
                               consequence + ". Use a certificate issued by the consortium CA, or set tls.ca to the "
                               "consortium CA certificate that signed it");
    X509* at = X509_STORE_CTX_get_current_cert(verify.get());
    throw std::runtime_error(file + " does not verify against the CA in '" + s.ca_file + "' (tls.ca): " + reason +
                             (at ? " (at '" + subjectCommonName(at) + "')" : std::string()) + "; so " + consequence +
                             "; " + reissue);
  }

  const int purpose = server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
  if (X509_check_purpose(cert, purpose, 0) != 1) {
    const std::string eku = extendedKeyUsage(cert);
    ERR_clear_error();
    throw std::runtime_error(file + " does not allow " +
                             (server ? "TLS server authentication (serverAuth)" : "TLS client authentication (clientAuth)") +
                             (eku.empty() ? std::string(" by its key usage") : "; its extended key usage is " + eku) +
                             (server && eku == "clientAuth" ? " (a worker's certificate)" : "") + "; so " + consequence +
                             " (\"unsuitable certificate purpose\"). " +
                             (server ? "Use a coordinator certificate: " : "Use a worker certificate: ") + issue);
  }
}

void checkCrlIssuer(X509_STORE* store, X509_CRL* crl, const std::string& path) {
  CertStackPtr cas(X509_STORE_get1_all_certs(store));
  const X509_NAME* issuer = X509_CRL_get_issuer(crl);
  std::string trusted;
  bool named = false;
  for (int i = 0; cas && i < sk_X509_num(cas.get()); ++i) {
    X509* ca = sk_X509_value(cas.get(), i);
    trusted += (trusted.empty() ? "'" : ", '") + subjectCommonName(ca) + "'";
    if (X509_NAME_cmp(X509_get_subject_name(ca), issuer) != 0) continue;
    named = true;
    if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) return;
  }
  ERR_clear_error();
  const std::string advice =
      "; every handshake would fail with \"unable to get certificate CRL\". Ship the crl.pem of the consortium CA "
      "directory (`tapestry ca crl --ca <CA directory>` writes it), the CA whose certificate is tls.ca";
  if (named)
    throw std::runtime_error("the CRL in '" + path + "' (tls.crl) names '" + nameText(issuer) +
                             "' as its issuer but is not signed by the key of that CA in tls.ca" + advice);
  throw std::runtime_error("the CRL in '" + path + "' (tls.crl) is issued by '" + nameText(issuer) +
                           "', not by the CA in tls.ca (" + (trusted.empty() ? "none" : trusted) + ")" + advice);
}

int rememberPresentedCertificate(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (ssl && leaf && !SSL_get_ex_data(ssl, sslIndex()) && X509_up_ref(leaf) == 1) {
    if (SSL_set_ex_data(ssl, sslIndex(), leaf) != 1) X509_free(leaf);
  }
  return preverify_ok;
}

X509* presentedCertificate(SSL* ssl) {
  if (X509* verified = SSL_get0_peer_certificate(ssl)) return verified;
  return static_cast<X509*>(SSL_get_ex_data(ssl, sslIndex()));
}

}  // namespace tapestry::common::net
