#pragma once
// Asio/OpenSSL side of the TLS settings: contexts that accept only TLS 1.3,
// require and verify the peer's certificate against the consortium CA (and
// CRL when given), and the peer-identity lookup.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <string>

#include "common/net/tls.h"

namespace tapestry::common::net {

namespace asio = boost::asio;
using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

// Throws std::runtime_error naming the file and the OpenSSL reason when a
// certificate, key, CA or CRL cannot be loaded.
asio::ssl::context makeServerContext(const TlsSettings& settings);
asio::ssl::context makeClientContext(const TlsSettings& settings);

// Subject common name of the verified peer certificate; empty if none.
std::string peerIdentity(TlsStream& stream);

// Human-readable reason for the last handshake failure on this stream
// (the certificate verification result when there is one).
std::string handshakeFailureReason(TlsStream& stream, const boost::system::error_code& ec);

}  // namespace tapestry::common::net
