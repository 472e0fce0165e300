#pragma once
// Asio/OpenSSL side of the TLS settings: contexts that accept only TLS 1.3,
// require and verify the peer's certificate against the consortium CA (and
// CRL when given), and the peer-identity lookup.
#include <boost/asio/ssl/context.hpp>

#include <string>

#include "common/net/tls.h"
#include "common/net/tls_stream_impl.h"

namespace tapestry::common::net {

// Throws std::runtime_error naming the file and the OpenSSL reason when a
// certificate, key, CA or CRL cannot be loaded.
asio::ssl::context makeServerContext(const TlsSettings& settings);
asio::ssl::context makeClientContext(const TlsSettings& settings);

// Subject common name of the verified peer certificate; empty if none.
std::string peerIdentity(const TlsStream& stream);

// Human-readable reason for the last handshake failure on this stream
// (the certificate verification result when there is one).
std::string handshakeFailureReason(const TlsStream& stream, const boost::system::error_code& ec);

}  // namespace tapestry::common::net
