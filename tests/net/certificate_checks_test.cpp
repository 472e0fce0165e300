// A daemon whose own certificate or CRL cannot work stops at start, naming
// the file, what is wrong and what to do, instead of every peer failing its
// handshake; and, once running, the coordinator can tell which admitted
// peers a newer CRL revokes and which peers do not speak TLS at all.
// Certificates come from the project's own CA code (tools/pki), altered and
// re-signed by that CA where a case needs one it would not issue.
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

#include "common/net/crl_watch_impl.h"
#include "net/net_test_support.h"
#include "tools/pki/ca_store.h"

namespace tapestry::common::net {
namespace {

using testing::TestPki;
using testing::TlsPair;
namespace detail = tools::detail;

// The message makeServerContext / makeClientContext throws; "" if none.
std::string startFailure(const std::function<void()>& start) {
  try {
    start();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string day(const ASN1_TIME* t) {
  std::tm tm{};
  EXPECT_EQ(ASN1_TIME_to_tm(t, &tm), 1);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

class CertificateChecksTest : public ::testing::Test {
 protected:
  // A copy of `cert` changed by `alter`, re-signed by the consortium CA, in
  // a file of its own (the key stays the original's).
  tools::IssuedFiles altered(const tools::IssuedFiles& cert, const std::string& name,
                             const std::function<void(X509*)>& alter) {
    detail::CaMaterial ca = detail::loadCa(pki_.caDir());
    detail::X509Ptr x = detail::readCertificatePem(cert.cert_path, "");
    alter(x.get());
    detail::signCertificate(x.get(), ca.key.get());
    tools::IssuedFiles out;
    out.cert_path = pki_.root() + "/" + name + ".crt";
    out.key_path = cert.key_path;
    std::FILE* f = std::fopen(out.cert_path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(PEM_write_X509(f, x.get()), 1);
    std::fclose(f);
    return out;
  }

  static void setExtendedKeyUsage(X509* cert, const char* value) {
    X509_delete_ext(cert, X509_get_ext_by_NID(cert, NID_ext_key_usage, -1));
    if (!value) return;
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, nullptr, cert, nullptr, nullptr, 0);
    detail::addExtension(cert, &ctx, NID_ext_key_usage, value);
  }

  TestPki pki_;
  asio::io_context io_;
};

TEST_F(CertificateChecksTest, ACoordinatorCertificateNotSignedByTheCaStopsTheStart) {
  pki_.createCa("foreign", "Some Other CA");
  auto other = pki_.issue("foreign", "coordinator", tools::CertKind::kCoordinator);
  TlsSettings settings = pki_.serverSettings();
  settings.cert_file = other.cert_path;
  settings.key_file = other.key_path;
  const std::string what = startFailure([&] { makeServerContext(settings); });
  EXPECT_NE(what.find("'" + other.cert_path + "' (tls.cert"), std::string::npos) << what;
  EXPECT_NE(what.find("does not chain to the CA in '" + pki_.caCert() + "' (tls.ca)"), std::string::npos) << what;
  EXPECT_NE(what.find("issued by 'Some Other CA'"), std::string::npos) << what;
  EXPECT_NE(what.find("unable to get local issuer certificate"), std::string::npos) << what;
  EXPECT_NE(what.find("every worker would refuse this coordinator"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, AWorkerCertificateAsTheCoordinatorsStopsTheStart) {
  auto worker = pki_.issue("ca", "worker-1", tools::CertKind::kWorker);
  TlsSettings settings = pki_.serverSettings();
  settings.cert_file = worker.cert_path;
  settings.key_file = worker.key_path;
  const std::string what = startFailure([&] { makeServerContext(settings); });
  EXPECT_NE(what.find("'" + worker.cert_path + "' (tls.cert"), std::string::npos) << what;
  EXPECT_NE(what.find("does not allow TLS server authentication (serverAuth)"), std::string::npos) << what;
  EXPECT_NE(what.find("extended key usage is clientAuth (a worker's certificate)"), std::string::npos) << what;
  EXPECT_NE(what.find("--coordinator"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, ACoordinatorCertificateWithoutExtendedKeyUsageIsAccepted) {
  auto bare = altered(pki_.issue("ca", "coordinator-2", tools::CertKind::kCoordinator), "bare",
                      [](X509* x) { setExtendedKeyUsage(x, nullptr); });
  TlsSettings settings = pki_.serverSettings();
  settings.cert_file = bare.cert_path;
  settings.key_file = bare.key_path;
  EXPECT_EQ(startFailure([&] { makeServerContext(settings); }), "");
}

TEST_F(CertificateChecksTest, ACrlOfAnotherCaStopsTheStart) {
  pki_.createCa("foreign", "Some Other CA");
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = pki_.crl("foreign");
  const std::string what = startFailure([&] { makeServerContext(settings); });
  EXPECT_NE(what.find("the CRL in '" + settings.crl_file + "' (tls.crl) is issued by 'Some Other CA'"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("not by the CA in tls.ca ('Tapestry Test CA')"), std::string::npos) << what;
  EXPECT_NE(what.find("tapestry ca crl --ca"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, ACrlInTheCasNameButNotSignedByItsKeyStopsTheStart) {
  pki_.createCa("foreign", "Some Other CA");
  detail::CaMaterial ca = detail::loadCa(pki_.caDir());
  detail::CaMaterial other = detail::loadCa(pki_.caDir("foreign"));
  detail::X509CrlPtr crl = detail::readCrlPem(pki_.crl(), "");
  ASSERT_EQ(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())), 1);
  ASSERT_GT(X509_CRL_sign(crl.get(), other.key.get(), EVP_sha256()), 0);
  const std::string path = pki_.root() + "/forged-crl.pem";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(PEM_write_X509_CRL(f, crl.get()), 1);
  std::fclose(f);
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = path;
  const std::string what = startFailure([&] { makeServerContext(settings); });
  EXPECT_NE(what.find("'" + path + "' (tls.crl) names 'Tapestry Test CA' as its issuer but is not signed by"),
            std::string::npos)
      << what;
}

TEST_F(CertificateChecksTest, ACrlOfAnotherCaShippedWhileRunningLeavesTheRevocationsInForce) {
  auto worker = pki_.issue("ca", "worker-revoked", tools::CertKind::kWorker);
  tools::revokeCertificate(pki_.caDir(), worker.cert_path);
  pki_.createCa("foreign", "Some Other CA");
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = pki_.root() + "/crl.pem";
  std::filesystem::copy_file(pki_.crl(), settings.crl_file);
  auto server_ctx = makeServerContext(settings);
  CrlWatch watch(server_ctx, settings.crl_file);
  EXPECT_TRUE(watch.check()) << "the first check reads the file";
  EXPECT_FALSE(watch.check()) << "unchanged";
  std::filesystem::copy_file(pki_.crl("foreign"), settings.crl_file, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::last_write_time(settings.crl_file,
                                   std::filesystem::last_write_time(settings.crl_file) + std::chrono::seconds(1));
  EXPECT_FALSE(watch.check()) << "a CRL the consortium CA did not issue is not taken";

  auto client_ctx = makeClientContext(pki_.clientSettings(worker));
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));
  ASSERT_TRUE(*pair.server_result) << "the revocation read before was dropped";
  EXPECT_NE(handshakeFailureReason(pair.server, *pair.server_result).find("certificate revoked"), std::string::npos);
}

TEST_F(CertificateChecksTest, AWorkerCertificateNotSignedByItsCaStopsTheWorker) {
  pki_.createCa("foreign", "Some Other CA");
  auto worker = pki_.issue("foreign", "worker-1", tools::CertKind::kWorker);
  const std::string what = startFailure([&] { makeClientContext(pki_.clientSettings(worker)); });
  EXPECT_NE(what.find("'" + worker.cert_path + "' (tls.cert, 'worker-1')"), std::string::npos) << what;
  EXPECT_NE(what.find("does not chain to the CA in '" + pki_.caCert() + "' (tls.ca)"), std::string::npos) << what;
  EXPECT_NE(what.find("the coordinator would refuse this worker"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, AnExpiredWorkerCertificateStopsTheWorkerAndNamesItsDates) {
  const auto worker = altered(pki_.issue("ca", "worker-1", tools::CertKind::kWorker), "expired", [](X509* x) {
    X509_gmtime_adj(X509_getm_notBefore(x), -10 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), -86400);
  });
  detail::X509Ptr x = detail::readCertificatePem(worker.cert_path, "");
  const std::string what = startFailure([&] { makeClientContext(pki_.clientSettings(worker)); });
  EXPECT_NE(what.find("'" + worker.cert_path + "' (tls.cert, 'worker-1') expired on " + day(X509_get0_notAfter(x.get()))),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("valid from " + day(X509_get0_notBefore(x.get()))), std::string::npos) << what;
  EXPECT_NE(what.find("tapestry ca issue"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, AWorkerCertificateNotYetValidStopsTheWorkerAndNamesItsDates) {
  const auto worker = altered(pki_.issue("ca", "worker-1", tools::CertKind::kWorker), "future",
                              [](X509* x) { X509_gmtime_adj(X509_getm_notBefore(x), 2 * 86400); });
  detail::X509Ptr x = detail::readCertificatePem(worker.cert_path, "");
  const std::string what = startFailure([&] { makeClientContext(pki_.clientSettings(worker)); });
  EXPECT_NE(what.find("is not valid before " + day(X509_get0_notBefore(x.get()))), std::string::npos) << what;
  EXPECT_NE(what.find("clock"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, AWorkerCertificateWithoutClientAuthStopsTheWorker) {
  const auto worker = altered(pki_.issue("ca", "worker-1", tools::CertKind::kWorker), "server-only",
                              [](X509* x) { setExtendedKeyUsage(x, "serverAuth"); });
  const std::string what = startFailure([&] { makeClientContext(pki_.clientSettings(worker)); });
  EXPECT_NE(what.find("does not allow TLS client authentication (clientAuth); its extended key usage is serverAuth"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("--worker"), std::string::npos) << what;
}

TEST_F(CertificateChecksTest, ACrlReadAfterTheHandshakeRevokesTheAdmittedPeer) {
  auto revoked = pki_.issue("ca", "worker-revoked", tools::CertKind::kWorker);
  auto kept = pki_.issue("ca", "worker-kept", tools::CertKind::kWorker);
  TlsSettings settings = pki_.serverSettings();
  settings.crl_file = pki_.crlSignedEarlier();
  auto server_ctx = makeServerContext(settings);
  CrlWatch watch(server_ctx, settings.crl_file);
  watch.check();
  auto revoked_ctx = makeClientContext(pki_.clientSettings(revoked));
  auto kept_ctx = makeClientContext(pki_.clientSettings(kept));
  TlsPair first(io_, server_ctx, revoked_ctx), second(io_, server_ctx, kept_ctx);
  ASSERT_TRUE(testing::handshake(io_, first));
  ASSERT_TRUE(testing::handshake(io_, second));
  ASSERT_FALSE(*first.server_result);
  ASSERT_FALSE(*second.server_result);
  EXPECT_FALSE(peerRevoked(server_ctx, first.server));
  EXPECT_EQ(peerSerial(first.server), tools::certificateSerialHex(revoked.cert_path));

  tools::revokeCertificate(pki_.caDir(), revoked.cert_path);
  std::filesystem::copy_file(pki_.crl(), settings.crl_file, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::last_write_time(settings.crl_file,
                                   std::filesystem::last_write_time(settings.crl_file) + std::chrono::seconds(1));
  EXPECT_FALSE(peerRevoked(server_ctx, first.server)) << "not yet read";
  EXPECT_TRUE(watch.check());
  EXPECT_TRUE(peerRevoked(server_ctx, first.server));
  EXPECT_FALSE(peerRevoked(server_ctx, second.server));
}

TEST_F(CertificateChecksTest, APeerThatDoesNotSpeakTlsIsToldFromARefusal) {
  asio::ip::tcp::acceptor acceptor(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  asio::ip::tcp::socket banner_side(io_);
  const std::string banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
  acceptor.async_accept(banner_side, [&](const boost::system::error_code& ec) {
    ASSERT_FALSE(ec) << ec.message();
    asio::async_write(banner_side, asio::buffer(banner), [](const boost::system::error_code&, size_t) {});
  });
  auto worker = pki_.issue("ca", "worker-1", tools::CertKind::kWorker);
  auto client_ctx = makeClientContext(pki_.clientSettings(worker));
  TlsStream client(io_, client_ctx);
  std::optional<boost::system::error_code> result;
  client.socket().async_connect(acceptor.local_endpoint(), [&](const boost::system::error_code& ec) {
    ASSERT_FALSE(ec) << ec.message();
    client.asyncHandshake(TlsStream::Role::kClient, [&](const boost::system::error_code& hec) { result = hec; });
  });
  ASSERT_TRUE(testing::runUntil(io_, [&] { return result.has_value(); }));
  ASSERT_TRUE(*result) << "a handshake with an SSH server succeeded";
  EXPECT_TRUE(peerIsNotTls(client, *result)) << result->message();
  EXPECT_EQ(client.firstByteReceived(), 'S');
}

TEST_F(CertificateChecksTest, ARefusalByATlsPeerIsNotTakenForAPeerThatDoesNotSpeakTls) {
  pki_.createCa("foreign", "Some Other CA");
  auto intruder = pki_.issue("foreign", "intruder", tools::CertKind::kWorker);
  auto server_ctx = makeServerContext(pki_.serverSettings());
  // The intruder trusts only its own CA: it refuses the coordinator.
  auto client_ctx = makeClientContext(pki_.clientSettings(intruder, "foreign"));
  TlsPair pair(io_, server_ctx, client_ctx);
  ASSERT_TRUE(testing::handshake(io_, pair));
  ASSERT_TRUE(*pair.client_result);
  EXPECT_FALSE(peerIsNotTls(pair.client, *pair.client_result)) << pair.client_result->message();
  EXPECT_EQ(pair.client.firstByteReceived(), 22) << "a TLS handshake record";
}

}  // namespace
}  // namespace tapestry::common::net
