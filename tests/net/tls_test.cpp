// Mutual TLS 1.3 between contexts built by makeServerContext and
// makeClientContext from a throwaway consortium PKI: who gets in, who is
// refused, and what the refusal says.
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "net/net_test_support.h"

namespace tapestry::common::net {
namespace {

using testing::TestPki;
using testing::TlsPair;

class TlsTest : public ::testing::Test {
 protected:
  asio::io_context io_;
  TestPki pki_;
};

TEST_F(TlsTest, MutualHandshakeAuthenticatesTheWorkerOverTls13) {
  auto worker = pki_.issue("ca", "worker-07", tools::CertKind::kWorker);
  auto server_ctx = makeServerContext(pki_.serverSettings());
  auto client_ctx = makeClientContext(pki_.clientSettings(worker));
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));

  ASSERT_FALSE(*pair.server_result) << handshakeFailureReason(pair.server, *pair.server_result);
  ASSERT_FALSE(*pair.client_result) << handshakeFailureReason(pair.client, *pair.client_result);
  EXPECT_EQ(peerIdentity(pair.server), "worker-07");
  EXPECT_EQ(peerIdentity(pair.client), "coordinator");
  EXPECT_EQ(SSL_version(pair.server.nativeHandle()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_version(pair.client.nativeHandle()), TLS1_3_VERSION);
}

TEST_F(TlsTest, ClientCertificateFromForeignCaIsRefused) {
  pki_.createCa("foreign", "Some Other CA");
  auto intruder = pki_.issue("foreign", "worker-07", tools::CertKind::kWorker);
  auto server_ctx = makeServerContext(pki_.serverSettings());
  // The intruder trusts the real CA (so it accepts the coordinator) but
  // presents a certificate the consortium never signed.
  auto client_ctx = makeClientContext(pki_.clientSettings(intruder, "ca"));
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));

  ASSERT_TRUE(*pair.server_result) << "the server accepted a certificate from a foreign CA";
  std::string reason = handshakeFailureReason(pair.server, *pair.server_result);
  EXPECT_NE(reason.find("certificate"), std::string::npos) << reason;
  EXPECT_NE(reason.find("unable to get local issuer certificate"), std::string::npos) << reason;
  EXPECT_EQ(peerIdentity(pair.server), "");
  EXPECT_TRUE(testing::firstClientRead(io_, pair)) << "the client could read after a refused handshake";
}

TEST_F(TlsTest, RevokedClientIsRefusedWhileOtherWorkersPass) {
  auto revoked = pki_.issue("ca", "worker-revoked", tools::CertKind::kWorker);
  auto good = pki_.issue("ca", "worker-good", tools::CertKind::kWorker);
  tools::revokeCertificate(pki_.caDir(), revoked.cert_path);
  TlsSettings server_settings = pki_.serverSettings();
  server_settings.crl_file = pki_.crl();
  auto server_ctx = makeServerContext(server_settings);

  {
    auto client_ctx = makeClientContext(pki_.clientSettings(revoked));
    TlsPair pair(io_, server_ctx, client_ctx);
    ASSERT_TRUE(testing::handshake(io_, pair));
    ASSERT_TRUE(*pair.server_result) << "the server accepted a revoked certificate";
    std::string reason = handshakeFailureReason(pair.server, *pair.server_result);
    EXPECT_NE(reason.find("certificate revoked"), std::string::npos) << reason;
    EXPECT_TRUE(testing::firstClientRead(io_, pair)) << "the revoked client could read";
  }
  {
    auto client_ctx = makeClientContext(pki_.clientSettings(good));
    TlsPair pair(io_, server_ctx, client_ctx);
    ASSERT_TRUE(testing::handshake(io_, pair));
    ASSERT_FALSE(*pair.server_result) << handshakeFailureReason(pair.server, *pair.server_result);
    ASSERT_FALSE(*pair.client_result) << handshakeFailureReason(pair.client, *pair.client_result);
    EXPECT_EQ(peerIdentity(pair.server), "worker-good");
  }
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  ASSERT_EQ(SSL_CTX_set_min_proto_version(client_ctx.native_handle(), TLS1_3_VERSION), 1);
  client_ctx.load_verify_file(pki_.caCert());
  client_ctx.set_verify_mode(asio::ssl::verify_peer);
  auto server_ctx = makeServerContext(pki_.serverSettings());
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));

  ASSERT_TRUE(*pair.server_result) << "the server accepted a client without a certificate";
  std::string reason = handshakeFailureReason(pair.server, *pair.server_result);
  EXPECT_NE(reason.find("certificate"), std::string::npos) << reason;
  EXPECT_EQ(peerIdentity(pair.server), "");
  EXPECT_TRUE(testing::firstClientRead(io_, pair)) << "the client without a certificate could read";
}

TEST_F(TlsTest, ServerRefusesClientThatOffersOnlyTls12) {
  auto worker = pki_.issue("ca", "worker-07", tools::CertKind::kWorker);
  auto server_ctx = makeServerContext(pki_.serverSettings());
  auto client_ctx = makeClientContext(pki_.clientSettings(worker));
  ASSERT_EQ(SSL_CTX_set_min_proto_version(client_ctx.native_handle(), TLS1_2_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx.native_handle(), TLS1_2_VERSION), 1);
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));
  EXPECT_TRUE(*pair.server_result);
  EXPECT_TRUE(*pair.client_result);
}

TEST_F(TlsTest, MissingKeyFileNamesTheFile) {
  TlsSettings settings = pki_.serverSettings();
  settings.key_file = pki_.root() + "/no-such-dir/coordinator.key";
  try {
    (void)makeServerContext(settings);
    FAIL() << "makeServerContext accepted a missing key file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(settings.key_file), std::string::npos) << e.what();
  }
}

TEST_F(TlsTest, KeyThatDoesNotMatchTheCertificateIsNamed) {
  auto worker = pki_.issue("ca", "worker-07", tools::CertKind::kWorker);
  TlsSettings settings = pki_.serverSettings();
  settings.key_file = worker.key_path;
  try {
    (void)makeServerContext(settings);
    FAIL() << "makeServerContext accepted a key of another certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(worker.key_path), std::string::npos) << e.what();
  }
}

TEST_F(TlsTest, MissingCrlFileNamesTheFile) {
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = pki_.root() + "/missing-crl.pem";
  try {
    (void)makeServerContext(settings);
    FAIL() << "makeServerContext accepted a missing CRL file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(settings.crl_file), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tapestry::common::net
