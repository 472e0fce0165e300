#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

#include "common/net/certificate_checks_impl.h"
#include "common/net/crl_watch_impl.h"
#include "common/net/tls_impl.h"

namespace tapestry::common::net {
namespace {

std::string opensslReason() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "no OpenSSL detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + ": " + opensslReason());
}

void loadCommon(asio::ssl::context& ctx, const TlsSettings& s, CertificateRole role) {
  SSL_CTX* native = ctx.native_handle();
  require(SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) == 1, "cannot require TLS 1.3");
  if (s.ca_file.empty() || s.cert_file.empty() || s.key_file.empty())
    throw std::runtime_error("TLS needs ca, cert and key files; run `tapestry ca` to create them");
  require(SSL_CTX_load_verify_locations(native, s.ca_file.c_str(), nullptr) == 1,
          "cannot load CA certificate '" + s.ca_file + "'");
  require(SSL_CTX_use_certificate_chain_file(native, s.cert_file.c_str()) == 1,
          "cannot load certificate '" + s.cert_file + "'");
  require(SSL_CTX_use_PrivateKey_file(native, s.key_file.c_str(), SSL_FILETYPE_PEM) == 1,
          "cannot load private key '" + s.key_file + "'");
  require(SSL_CTX_check_private_key(native) == 1,
          "private key '" + s.key_file + "' does not match certificate '" + s.cert_file + "'");
  checkOwnCertificate(native, s, role);  // before the CRL: its issuer is checked in addCrls
  if (!s.crl_file.empty()) {
    const auto expiry = addCrls(ctx, s.crl_file);
    if (expiry <= std::chrono::system_clock::now()) throw std::runtime_error(expiredCrlMessage(s.crl_file, expiry, false));
    X509_STORE_set_flags(SSL_CTX_get_cert_store(native), X509_V_FLAG_CRL_CHECK);
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, &rememberPresentedCertificate);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

std::chrono::system_clock::time_point addCrls(asio::ssl::context& ctx, const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!f) throw std::runtime_error("cannot open CRL file '" + path + "'");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  std::vector<std::unique_ptr<X509_CRL, void (*)(X509_CRL*)>> crls;
  while (X509_CRL* crl = PEM_read_X509_CRL(f.get(), nullptr, nullptr, nullptr)) crls.emplace_back(crl, &X509_CRL_free);
  ERR_clear_error();
  if (crls.empty()) throw std::runtime_error("CRL file '" + path + "' holds no PEM CRL");
  for (const auto& crl : crls) checkCrlIssuer(store, crl.get(), path);
  auto expiry = std::chrono::system_clock::time_point::max();
  for (const auto& crl : crls) {
    std::tm next{};
    if (const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl.get()); t && ASN1_TIME_to_tm(t, &next) == 1)
      expiry = std::min(expiry, std::chrono::system_clock::from_time_t(timegm(&next)));
    // A newer CRL of the same CA takes precedence over one loaded before.
    X509_STORE_add_crl(store, crl.get());
  }
  ERR_clear_error();  // adding one already in the store is not an error here
  return expiry;
}

asio::ssl::context makeServerContext(const TlsSettings& settings) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  loadCommon(ctx, settings, CertificateRole::kServer);
  SSL_CTX_set_purpose(ctx.native_handle(), X509_PURPOSE_SSL_CLIENT);
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.native_handle(), 0);
  return ctx;
}

asio::ssl::context makeClientContext(const TlsSettings& settings) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  loadCommon(ctx, settings, CertificateRole::kClient);
  SSL_CTX_set_purpose(ctx.native_handle(), X509_PURPOSE_SSL_SERVER);
  return ctx;
}

std::string peerIdentity(const TlsStream& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.nativeHandle());
  if (!cert) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string name(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return name;
}

std::string peerCertificateSummary(const TlsStream& stream) {
  X509* cert = presentedCertificate(stream.nativeHandle());
  if (!cert) return {};
  return "'" + subjectCommonName(cert) + "', serial " + serialHex(cert);
}

std::string peerSerial(const TlsStream& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.nativeHandle());
  return cert ? serialHex(cert) : std::string();
}

bool peerRevoked(asio::ssl::context& ctx, const TlsStream& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.nativeHandle());
  if (!cert) return false;
  std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> verify(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  if (!verify || X509_STORE_CTX_init(verify.get(), SSL_CTX_get_cert_store(ctx.native_handle()), cert,
                                     SSL_get_peer_cert_chain(stream.nativeHandle())) != 1)
    return false;
  X509_STORE_CTX_set_flags(verify.get(), X509_V_FLAG_CRL_CHECK);
  // Only revocation matters here: every other finding (a CRL about to be
  // replaced, say) is passed over so that the revocation check is reached.
  bool revoked = false;
  X509_STORE_CTX_set_app_data(verify.get(), &revoked);
  X509_STORE_CTX_set_verify_cb(verify.get(), [](int ok, X509_STORE_CTX* c) {
    if (!ok && X509_STORE_CTX_get_error(c) == X509_V_ERR_CERT_REVOKED)
      *static_cast<bool*>(X509_STORE_CTX_get_app_data(c)) = true;
    return 1;
  });
  X509_verify_cert(verify.get());
  ERR_clear_error();
  return revoked;
}

bool peerIsNotTls(const TlsStream& stream, const boost::system::error_code& ec) {
  if (!ec) return false;
  const unsigned long code = static_cast<unsigned long>(ec.value());
  if (ec.category() == asio::error::get_ssl_category() && ERR_GET_LIB(code) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(code)) {
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_HTTP_REQUEST:
      case SSL_R_HTTPS_PROXY_REQUEST:
        return true;
      default: break;
    }
  }
  // A TLS record starts with its content type: change_cipher_spec (20),
  // alert (21), handshake (22) or application data (23).
  const int first = stream.firstByteReceived();
  return first >= 0 && (first < 20 || first > 23);
}

std::string handshakeFailureReason(const TlsStream& stream, const boost::system::error_code& ec) {
  long verify = SSL_get_verify_result(stream.nativeHandle());
  std::string reason = ec.message();
  if (verify != X509_V_OK) reason += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
  if (verify == X509_V_ERR_CRL_HAS_EXPIRED)
    reason += std::string("; the CRL (tls.crl) has expired: ") + kRenewCrl;
  return reason;
}

}  // namespace tapestry::common::net
