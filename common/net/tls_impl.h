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
// certificate, key, CA or CRL cannot be loaded.
asio::ssl::context makeServerContext(const TlsSettings& settings);
asio::ssl::context makeClientContext(const TlsSettings& settings);

// Adds every CRL in `path` to the context's certificate store (a newer CRL
// of the same CA then takes precedence over one added before) and returns
// the earliest nextUpdate among them (time_point::max() if none has one).
// Throws std::runtime_error naming the file when it holds no CRL.
std::chrono::system_clock::time_point addCrls(asio::ssl::context& ctx, const std::string& path);

// Subject common name of the verified peer certificate; empty if none.
std::string peerIdentity(const TlsStream& stream);

// Human-readable reason for the last handshake failure on this stream
// (the certificate verification result when there is one).
std::string handshakeFailureReason(const TlsStream& stream, const boost::system::error_code& ec);

}  // namespace tapestry::common::net
