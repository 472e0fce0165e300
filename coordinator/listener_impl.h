#pragma once
// The coordinator's listening socket from listen.host and listen.port. A
// host name is resolved; a failure names the key at fault and gives advice
// that fits the error (an address that is not this machine's, a port in use,
// a privileged port).
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>

namespace tapestry::coordinator {

// Opens, binds and listens. A host name listens on its first IPv4 address
// (else its first address). Throws std::runtime_error with
// listenFailureMessage, or naming listen.host when it does not resolve.
void openListener(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, uint16_t port);

// "cannot listen on HOST:PORT: <reason>; <what to do>".
std::string listenFailureMessage(const std::string& host, uint16_t port, const boost::system::error_code& ec);

}  // namespace tapestry::coordinator
