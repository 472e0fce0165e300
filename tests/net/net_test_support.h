#pragma once
// Shared pieces of the transport tests: a throwaway consortium PKI created in
// a mkdtemp directory (never committed), TLS settings built from it, a
// loopback TLS pair handshaken on port 0, and a bounded io_context driver.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/net/tls.h"
#include "common/net/tls_impl.h"
#include "tools/pki/ca_store.h"
#include "tools/pki/pki.h"

namespace tapestry::common::net::testing {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A fresh CA with one coordinator certificate ("coordinator", SAN localhost).
// Worker certificates are issued on demand. Everything lives under a
// temporary directory removed by the destructor.
class TestPki {
 public:
  TestPki() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tapestry-net-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    root_ = pattern;
    try {
      createCa("ca");
      coordinator_ = issue("ca", "coordinator", tools::CertKind::kCoordinator);
    } catch (...) {
      removeRoot();
      throw;
    }
  }
  ~TestPki() { removeRoot(); }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  std::string root() const { return root_; }
  std::string caDir(const std::string& ca = "ca") const { return root_ + "/" + ca; }
  std::string caCert(const std::string& ca = "ca") const { return caDir(ca) + "/ca.crt"; }
  std::string crl(const std::string& ca = "ca") const { return caDir(ca) + "/crl.pem"; }

  void createCa(const std::string& ca, const std::string& name = "Tapestry Test CA") {
    tools::CaOptions options;
    options.dir = caDir(ca);
    options.name = name;
    options.days = 60;  // certificates below get 30: they must not outlive the CA
    tools::initCa(options);
  }

  tools::IssuedFiles issue(const std::string& ca, const std::string& name, tools::CertKind kind) {
    tools::IssueOptions options;
    options.ca_dir = caDir(ca);
    options.out_dir = root_ + "/issued-" + ca;
    options.name = name;
    options.kind = kind;
    options.days = 30;
    return tools::issueCertificate(options);
  }

  // A file holding the certificates of several CAs, for tls.ca: a peer
  // that trusts them all.
  std::string bundle(const std::vector<std::string>& cas) const {
    std::string path = root_ + "/bundle";
    for (const auto& ca : cas) path += "-" + ca;
    path += ".crt";
    std::ofstream out(path);
    for (const auto& ca : cas) out << std::ifstream(caCert(ca)).rdbuf();
    return path;
  }

  // The CA's CRL as it is now, re-signed with a lastUpdate an hour back, in
  // a file of its own. CRLs of one CA are told apart by their lastUpdate, to
  // the second: whatever the CA signs next supersedes this one at once.
  std::string crlSignedEarlier(const std::string& ca = "ca") const {
    tools::detail::CaMaterial material = tools::detail::loadCa(caDir(ca));
    tools::detail::X509CrlPtr crl = tools::detail::readCrlPem(this->crl(ca), "");
    ASN1_TIME* last = X509_gmtime_adj(nullptr, -3600);
    const bool ok = X509_CRL_set1_lastUpdate(crl.get(), last) == 1 &&
                    X509_CRL_sign(crl.get(), material.key.get(), EVP_sha256()) > 0;
    ASN1_TIME_free(last);
    if (!ok) throw std::runtime_error("cannot re-sign the CRL of " + caDir(ca));
    const std::string path = root_ + "/crl-" + ca + "-earlier.pem";
    std::ofstream(path) << tools::detail::crlToPem(crl.get());
    return path;
  }

  TlsSettings serverSettings() const {
    return TlsSettings{caCert(), coordinator_.cert_path, coordinator_.key_path, ""};
  }
  // A worker's settings: trusts `trusted_ca`, presents `cert`.
  TlsSettings clientSettings(const tools::IssuedFiles& cert, const std::string& trusted_ca = "ca") const {
    return TlsSettings{caCert(trusted_ca), cert.cert_path, cert.key_path, ""};
  }

 private:
  void removeRoot() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  std::string root_;
  tools::IssuedFiles coordinator_;
};

// Runs `io` until `done()` or `limit` passes; true when done() held.
inline bool runUntil(asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_until(deadline);
  }
  return true;
}

// Runs every handler that is ready or becomes ready within `limit`; returns
// once the io_context has no work left.
inline void drain(asio::io_context& io, std::chrono::milliseconds limit = 5s) {
  io.restart();
  io.run_for(limit);
}

// A server and a client TLS stream connected over 127.0.0.1 (port 0) with
// both handshakes finished; the error codes say how each side's went.
struct TlsPair {
  TlsPair(asio::io_context& io, asio::ssl::context& server_ctx, asio::ssl::context& client_ctx)
      : server(io, server_ctx), client(io, client_ctx) {}
  TlsStream server;
  TlsStream client;
  std::optional<boost::system::error_code> server_result;
  std::optional<boost::system::error_code> client_result;
  bool connected = false;
  char read_byte = 0;
};

// Connects and handshakes; the client checks the coordinator's name the way
// the worker does. Fails the test (returns false) if either side has not
// finished its handshake within the bound.
inline bool handshake(asio::io_context& io, TlsPair& pair) {
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  acceptor.async_accept(pair.server.socket(), [&](const boost::system::error_code& ec) {
    EXPECT_FALSE(ec) << ec.message();
    pair.server.asyncHandshake(TlsStream::Role::kServer,
                               [&](const boost::system::error_code& hec) { pair.server_result = hec; });
  });
  pair.client.socket().async_connect(acceptor.local_endpoint(), [&](const boost::system::error_code& ec) {
    EXPECT_FALSE(ec) << ec.message();
    pair.connected = true;
    pair.client.setPeerName("localhost");
    pair.client.asyncHandshake(TlsStream::Role::kClient,
                               [&](const boost::system::error_code& hec) { pair.client_result = hec; });
  });
  bool done = runUntil(io, [&] { return pair.server_result && pair.client_result; });
  EXPECT_TRUE(done) << "handshake did not finish (connected: " << pair.connected << ")";
  return done;
}

// The client's first read after the handshake: in TLS 1.3 the server judges
// the client certificate after the client has finished, so a refusal reaches
// the client as an alert (or a closed stream) here.
inline boost::system::error_code firstClientRead(asio::io_context& io, TlsPair& pair) {
  auto result = std::make_shared<std::optional<boost::system::error_code>>();
  pair.client.asyncReadSome(asio::buffer(&pair.read_byte, 1),
                            [result](const boost::system::error_code& ec, size_t) { *result = ec; });
  EXPECT_TRUE(runUntil(io, [&] { return result->has_value(); })) << "the client's first read never completed";
  return result->value_or(asio::error::timed_out);
}

}  // namespace tapestry::common::net::testing
