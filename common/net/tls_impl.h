#pragma once
// Asio/OpenSSL side of the TLS settings: contexts that accept only TLS 1.3,
// require and verify the peer's certificate against the consortium CA (and
// CRL when given), and the peer-identity lookup.
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <string>

#include "common/net/tls.h"
#include "common/net/tls_stream_impl.h"

namespace tapestry::common::net {

// Throws std::runtime_error naming the file and the OpenSSL reason when a
// certificate, key, CA or CRL cannot be loaded, and, naming the file, what is
// wrong and what to do, when this process's own certificate could not work:
// one that does not chain to tls.ca, is expired or not yet valid, or does
// not allow the role (serverAuth for the coordinator, clientAuth for a
// worker), or a CRL that tls.ca did not issue. Otherwise every peer would
// refuse the handshake and the blame would land on them.
asio::ssl::context makeServerContext(const TlsSettings& settings);
asio::ssl::context makeClientContext(const TlsSettings& settings);

// Adds every CRL in `path` to the context's certificate store (a newer CRL
// of the same CA then takes precedence over one added before) and returns
// the earliest nextUpdate among them (time_point::max() if none has one).
// Throws std::runtime_error naming the file when it holds no CRL, or a CRL
// not issued and signed by a CA the context trusts (then none is added).
std::chrono::system_clock::time_point addCrls(asio::ssl::context& ctx, const std::string& path);

// Subject common name of the verified peer certificate; empty if none.
std::string peerIdentity(const TlsStream& stream);

// "'hospital-a', serial 4f1c..." of the certificate the peer presented,
// also when the handshake refused it; empty when it presented none.
std::string peerCertificateSummary(const TlsStream& stream);

// Lowercase hex serial of the verified peer certificate (as `tapestry ca`
// prints it); empty if none.
std::string peerSerial(const TlsStream& stream);

// Whether the CRLs now in `ctx`'s store (say, after CrlWatch read a new
// file) revoke the certificate this stream's peer was admitted with.
bool peerRevoked(asio::ssl::context& ctx, const TlsStream& stream);

// Whether a failed client handshake means the peer does not speak TLS at
// all (an SSH or HTTP server on that port): what it sent cannot start a TLS
// record. Such a peer is the wrong address, not a refusal.
bool peerIsNotTls(const TlsStream& stream, const boost::system::error_code& ec);

// Human-readable reason for the last handshake failure on this stream
// (the certificate verification result when there is one).
std::string handshakeFailureReason(const TlsStream& stream, const boost::system::error_code& ec);

}  // namespace tapestry::common::net
