#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

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

void loadCommon(asio::ssl::context& ctx, const TlsSettings& s) {
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
  if (!s.crl_file.empty()) {
    const auto expiry = addCrls(ctx, s.crl_file);
    if (expiry <= std::chrono::system_clock::now()) throw std::runtime_error(expiredCrlMessage(s.crl_file, expiry));
    X509_STORE_set_flags(SSL_CTX_get_cert_store(native), X509_V_FLAG_CRL_CHECK);
  }
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

std::chrono::system_clock::time_point addCrls(asio::ssl::context& ctx, const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!f) throw std::runtime_error("cannot open CRL file '" + path + "'");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  int loaded = 0;
  auto expiry = std::chrono::system_clock::time_point::max();
  while (X509_CRL* crl = PEM_read_X509_CRL(f.get(), nullptr, nullptr, nullptr)) {
    std::tm next{};
    if (const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl); t && ASN1_TIME_to_tm(t, &next) == 1)
      expiry = std::min(expiry, std::chrono::system_clock::from_time_t(timegm(&next)));
    // A newer CRL of the same CA takes precedence over one loaded before.
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    ++loaded;
  }
  ERR_clear_error();
  if (loaded == 0) throw std::runtime_error("CRL file '" + path + "' holds no PEM CRL");
  return expiry;
}

asio::ssl::context makeServerContext(const TlsSettings& settings) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  loadCommon(ctx, settings);
  SSL_CTX_set_purpose(ctx.native_handle(), X509_PURPOSE_SSL_CLIENT);
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.native_handle(), 0);
  return ctx;
}

asio::ssl::context makeClientContext(const TlsSettings& settings) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  loadCommon(ctx, settings);
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

std::string handshakeFailureReason(const TlsStream& stream, const boost::system::error_code& ec) {
  long verify = SSL_get_verify_result(stream.nativeHandle());
  std::string reason = ec.message();
  if (verify != X509_V_OK) reason += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
  if (verify == X509_V_ERR_CRL_HAS_EXPIRED)
    reason += std::string("; the CRL (tls.crl) has expired: ") + kRenewCrl;
  return reason;
}

}  // namespace tapestry::common::net
