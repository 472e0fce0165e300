#include "coordinator/listener_impl.h"

#include <cerrno>
#include <stdexcept>

#include "common/log.h"

namespace tapestry::coordinator {

namespace asio = boost::asio;

namespace {

asio::ip::address resolveHost(asio::ip::tcp::acceptor& acceptor, const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) return address;
  asio::ip::tcp::resolver resolver(acceptor.get_executor());
  auto results = resolver.resolve(host, std::to_string(port), asio::ip::tcp::resolver::passive, ec);
  if (ec || results.empty())
    throw std::runtime_error("listen.host '" + host + "' is neither an IP address nor a host name this machine can " +
                             "resolve (" + (ec ? ec.message() : std::string("no address")) +
                             "); use one of this machine's addresses, or 0.0.0.0 to listen on all of them");
  address = results.begin()->endpoint().address();
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) {
      address = entry.endpoint().address();
      break;
    }
  }
  LOG_INFO("listen.host " << host << " resolves to " << address.to_string());
  return address;
}

}  // namespace

std::string listenFailureMessage(const std::string& host, uint16_t port, const boost::system::error_code& ec) {
  std::string message = "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message() + "; ";
  if (ec == boost::system::errc::address_not_available)
    return message + "listen.host " + host + " is not an address of this machine: use one of its addresses, or " +
           "0.0.0.0 to listen on all of them";
  if (ec == boost::system::errc::address_in_use)
    return message + "another process listens on port " + std::to_string(port) +
           ": pick another listen.port or stop the other process";
  if (ec == boost::system::errc::permission_denied && port < 1024)
    return message + "ports below 1024 need root or the CAP_NET_BIND_SERVICE capability: pick a listen.port of " +
           "1024 or above";
  return message + "check listen.host and listen.port";
}

void openListener(asio::ip::tcp::acceptor& acceptor, const std::string& host, uint16_t port) {
  const asio::ip::tcp::endpoint endpoint(resolveHost(acceptor, host, port), port);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    throw std::runtime_error(listenFailureMessage(host, port, ec));
  }
}

}  // namespace tapestry::coordinator
