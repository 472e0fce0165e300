#pragma once
// Checks that catch, at start, a certificate or CRL that cannot work, so the
// daemon that holds it stops with the file named instead of every peer
// failing its handshake with an OpenSSL reason that blames the peer; and the
// bookkeeping that lets a refused handshake name the certificate it refused.
// Internal to common/net: tls.cpp calls them while it builds a context.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

#include "common/net/tls.h"

namespace tapestry::common::net {

enum class CertificateRole { kServer, kClient };

// Throws std::runtime_error unless the certificate loaded into `ctx` from
// settings.cert_file is within its validity dates, chains to the CAs loaded
// from settings.ca_file, and allows `role` (serverAuth or clientAuth when it
// has an extended key usage). Call before any CRL is added to the store.
void checkOwnCertificate(SSL_CTX* ctx, const TlsSettings& settings, CertificateRole role);

// Throws std::runtime_error naming `path` unless `crl` was issued by one of
// `store`'s CA certificates and signed by its key.
void checkCrlIssuer(X509_STORE* store, X509_CRL* crl, const std::string& path);

// The verify callback of every context: keeps the leaf certificate the peer
// presented on its SSL, so that a refusal can name it (OpenSSL keeps it only
// once verification succeeded). Passes preverify_ok through.
int rememberPresentedCertificate(int preverify_ok, X509_STORE_CTX* store);

// The certificate the peer presented: the verified one, else the one
// rememberPresentedCertificate kept; nullptr when it presented none.
X509* presentedCertificate(SSL* ssl);

// The subject's common name, and the serial in lowercase hex as `tapestry
// ca` prints it.
std::string subjectCommonName(X509* cert);
std::string serialHex(X509* cert);

}  // namespace tapestry::common::net
