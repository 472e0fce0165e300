// Mutual TLS 1.3 between contexts built by makeServerContext and
// makeClientContext from a throwaway consortium PKI: who gets in, who is
// refused, and what the refusal says.
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "common/net/crl_watch_impl.h"
#include "net/net_test_support.h"
#include "tools/pki/ca_store.h"

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
  // The intruder trusts the real CA (so it accepts the coordinator) and its
  // own (so it passes its start-up check), but presents a certificate the
  // consortium never signed.
  TlsSettings settings = pki_.clientSettings(intruder);
  settings.ca_file = pki_.bundle({"ca", "foreign"});
  auto client_ctx = makeClientContext(settings);
  // Only the leaf goes out (else the foreign root rides along and the
  // refusal reads "self-signed certificate in certificate chain").
  SSL_CTX_set_mode(client_ctx.native_handle(), SSL_MODE_NO_AUTO_CHAIN);
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));

  ASSERT_TRUE(*pair.server_result) << "the server accepted a certificate from a foreign CA";
  std::string reason = handshakeFailureReason(pair.server, *pair.server_result);
  EXPECT_NE(reason.find("certificate"), std::string::npos) << reason;
  EXPECT_NE(reason.find("unable to get local issuer certificate"), std::string::npos) << reason;
  EXPECT_EQ(peerIdentity(pair.server), "");
  EXPECT_EQ(peerCertificateSummary(pair.server), "'worker-07', serial " + tools::certificateSerialHex(intruder.cert_path))
      << "a refusal names the certificate it refused";
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
    EXPECT_EQ(peerCertificateSummary(pair.server),
              "'worker-revoked', serial " + tools::certificateSerialHex(revoked.cert_path));
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

// A handshake of `worker` against `server_ctx`: true when the server accepted it.
bool serverAccepts(asio::io_context& io, asio::ssl::context& server_ctx, const TestPki& pki,
                   const tools::IssuedFiles& worker) {
  auto client_ctx = makeClientContext(pki.clientSettings(worker));
  TlsPair pair(io, server_ctx, client_ctx);
  EXPECT_TRUE(testing::handshake(io, pair));
  return pair.server_result && !*pair.server_result;
}

TEST_F(TlsTest, ARevocationShippedWhileRunningIsInForceWithoutARestart) {
  auto worker = pki_.issue("ca", "worker-later-revoked", tools::CertKind::kWorker);
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = pki_.crl();
  auto server_ctx = makeServerContext(settings);
  CrlWatch watch(server_ctx, settings.crl_file);
  watch.check();
  const auto in_a_month = std::chrono::system_clock::now() + std::chrono::hours(24 * 29);
  EXPECT_GT(watch.expiry(), in_a_month) << "tapestry ca signs a CRL for 30 days";
  ASSERT_TRUE(serverAccepts(io_, server_ctx, pki_, worker));
  // CRLs of one CA are told apart by their lastUpdate, to the second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  tools::revokeCertificate(pki_.caDir(), worker.cert_path);
  std::filesystem::last_write_time(settings.crl_file,
                                   std::filesystem::last_write_time(settings.crl_file) + std::chrono::seconds(1));
  EXPECT_TRUE(serverAccepts(io_, server_ctx, pki_, worker)) << "not yet read again";
  watch.check();
  EXPECT_FALSE(serverAccepts(io_, server_ctx, pki_, worker)) << "the re-signed CRL revokes it";
}

TEST_F(TlsTest, AnExpiredCrlStopsTheStartAndSaysHowToRenewIt) {
  // Signed by the consortium CA, valid from two days ago until yesterday.
  auto ca = tools::detail::loadCa(pki_.caDir());
  X509_CRL* crl = X509_CRL_new();
  ASSERT_EQ(X509_CRL_set_version(crl, 1), 1);
  ASSERT_EQ(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.cert.get())), 1);
  ASN1_TIME* last = X509_gmtime_adj(nullptr, -2 * 86400);
  ASN1_TIME* next = X509_gmtime_adj(nullptr, -86400);
  ASSERT_EQ(X509_CRL_set1_lastUpdate(crl, last), 1);
  ASSERT_EQ(X509_CRL_set1_nextUpdate(crl, next), 1);
  ASN1_TIME_free(last);
  ASN1_TIME_free(next);
  ASSERT_GT(X509_CRL_sign(crl, ca.key.get(), EVP_sha256()), 0);
  const std::string path = pki_.root() + "/expired-crl.pem";
  FILE* out = std::fopen(path.c_str(), "w");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(PEM_write_X509_CRL(out, crl), 1);
  std::fclose(out);
  X509_CRL_free(crl);

  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = path;
  try {
    makeServerContext(settings);
    ADD_FAILURE() << "a context was built with an expired CRL: every handshake would fail";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + path + "' expired on "), std::string::npos) << what;
    EXPECT_NE(what.find("tapestry ca crl --ca"), std::string::npos) << what;
    EXPECT_NE(what.find("and start again"), std::string::npos) << what;
    EXPECT_EQ(what.find("within a minute"), std::string::npos) << "the daemon stops; it reads nothing again:\n" << what;
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
  EXPECT_EQ(peerCertificateSummary(pair.server), "") << "it presented none";
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
