// CA, issuance and revocation checked from the outside: every certificate is
// verified with OpenSSL's own X509_STORE / X509_verify_cert in strict mode.
#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tools/pki/openssl_util.h"
#include "tools/pki/pki.h"

namespace tapestry::tools {
namespace {

using detail::X509CrlPtr;
using detail::X509Ptr;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

unsigned modeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 0777;
}

X509Ptr loadCert(const std::string& path) {
  return detail::readCertificatePem(path, "test");
}

X509CrlPtr loadCrl(const std::string& path) { return detail::readCrlPem(path, "test"); }

// X509_V_OK when leaf chains to the CA in ca_dir (checking crl.pem when asked).
int verifyCode(const std::string& ca_dir, const std::string& leaf_path, bool check_crl,
               int purpose) {
  detail::X509StorePtr store(X509_STORE_new());
  X509Ptr ca = loadCert(ca_dir + "/ca.crt");
  X509Ptr leaf = loadCert(leaf_path);
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca.get()), 1);
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (check_crl) {
    X509CrlPtr crl = loadCrl(ca_dir + "/crl.pem");
    EXPECT_EQ(X509_STORE_add_crl(store.get(), crl.get()), 1);
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  X509_STORE_set_flags(store.get(), flags);
  detail::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr), 1);
  EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), purpose), 1);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  int error = X509_STORE_CTX_get_error(ctx.get());
  return error == X509_V_OK ? -1 : error;
}

std::vector<std::string> altNames(X509* cert) {
  std::vector<std::string> names;
  detail::GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type == GEN_DNS) {
      names.push_back("DNS:" + std::string(reinterpret_cast<const char*>(
                                               ASN1_STRING_get0_data(name->d.dNSName))));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text,
                sizeof(text));
      names.push_back(std::string("IP:") + text);
    }
  }
  return names;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tapestry_pki_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    ca_dir_ = root_ + "/ca";
    out_dir_ = root_ + "/certs";
    initCa({ca_dir_, "Test Consortium CA", 365});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  IssuedFiles issue(const std::string& name, CertKind kind, std::vector<std::string> dns = {},
                    std::vector<std::string> ips = {}) {
    IssueOptions options;
    options.ca_dir = ca_dir_;
    options.out_dir = out_dir_;
    options.name = name;
    options.kind = kind;
    options.dns_names = std::move(dns);
    options.ip_addresses = std::move(ips);
    options.days = 30;
    return issueCertificate(options);
  }

  std::string root_;
  std::string ca_dir_;
  std::string out_dir_;
};

TEST_F(PkiTest, InitWritesCaFilesWithPrivateModesAndEmptySignedCrl) {
  EXPECT_EQ(modeOf(ca_dir_), 0700u);
  EXPECT_EQ(modeOf(ca_dir_ + "/ca.crt"), 0644u);
  EXPECT_EQ(modeOf(ca_dir_ + "/ca.key"), 0600u);
  EXPECT_EQ(modeOf(ca_dir_ + "/crl.pem"), 0644u);
  EXPECT_EQ(readFile(ca_dir_ + "/revoked.txt"), "");

  X509Ptr ca = loadCert(ca_dir_ + "/ca.crt");
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(detail::nameEntry(X509_get_subject_name(ca.get()), NID_commonName),
            "Test Consortium CA");
  EXPECT_EQ(X509_get_signature_nid(ca.get()), NID_ecdsa_with_SHA256);

  X509CrlPtr crl = loadCrl(ca_dir_ + "/crl.pem");
  const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  EXPECT_TRUE(revoked == nullptr || sk_X509_REVOKED_num(revoked) == 0);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_CRL_get0_lastUpdate(crl.get()),
                           X509_CRL_get0_nextUpdate(crl.get())),
            1);
  EXPECT_EQ(days, 30);
  EXPECT_EQ(seconds, 0);
}

TEST_F(PkiTest, ReinitRefusesAndKeepsTheKey) {
  std::string key = readFile(ca_dir_ + "/ca.key");
  try {
    initCa({ca_dir_, "Other CA", 365});
    FAIL() << "second init must throw";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), "CA already exists in " + ca_dir_ +
                                             "; use a new --dir or remove it");
  }
  EXPECT_EQ(readFile(ca_dir_ + "/ca.key"), key);
}

TEST_F(PkiTest, CoordinatorAndWorkerVerifyAgainstTheirCaOnly) {
  IssuedFiles coordinator = issue("coordinator", CertKind::kCoordinator);
  IssuedFiles worker = issue("worker-01", CertKind::kWorker);
  EXPECT_EQ(coordinator.cert_path, out_dir_ + "/coordinator.crt");
  EXPECT_EQ(worker.key_path, out_dir_ + "/worker-01.key");
  EXPECT_EQ(modeOf(out_dir_), 0700u);
  EXPECT_EQ(modeOf(coordinator.key_path), 0600u);
  EXPECT_EQ(modeOf(worker.key_path), 0600u);
  EXPECT_EQ(modeOf(coordinator.cert_path), 0644u);

  EXPECT_EQ(verifyCode(ca_dir_, coordinator.cert_path, true, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(verifyCode(ca_dir_, coordinator.cert_path, false, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verifyCode(ca_dir_, worker.cert_path, true, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verifyCode(ca_dir_, worker.cert_path, false, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);

  const std::string foreign = root_ + "/foreign";
  initCa({foreign, "Foreign CA", 365});
  EXPECT_EQ(verifyCode(foreign, coordinator.cert_path, false, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(verifyCode(foreign, worker.cert_path, false, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

  X509Ptr cert = loadCert(worker.cert_path);
  detail::EvpPkeyPtr key = detail::readPrivateKeyPem(worker.key_path, "test");
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  char group[64] = {};
  size_t group_length = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &group_length), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
}

TEST_F(PkiTest, CoordinatorSanHoldsGivenNamesOrLoopbackDefaults) {
  IssuedFiles given = issue("coord-a", CertKind::kCoordinator, {"coord.example.org", "localhost"},
                            {"10.1.2.3", "::1"});
  X509Ptr cert = loadCert(given.cert_path);
  EXPECT_EQ(altNames(cert.get()), (std::vector<std::string>{"DNS:coord.example.org",
                                                            "DNS:localhost", "IP:10.1.2.3",
                                                            "IP:::1"}));
  EXPECT_EQ(X509_check_host(cert.get(), "coord.example.org", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 0);

  IssuedFiles defaults = issue("coord-b", CertKind::kCoordinator);
  X509Ptr loopback = loadCert(defaults.cert_path);
  EXPECT_EQ(altNames(loopback.get()),
            (std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1", "IP:::1"}));
  uint32_t xku = X509_get_extended_key_usage(loopback.get());
  EXPECT_TRUE((xku & XKU_SSL_SERVER) != 0);
  EXPECT_TRUE((xku & XKU_SSL_CLIENT) != 0);
}

TEST_F(PkiTest, WorkerIsALeafNamedAfterItsName) {
  IssuedFiles worker = issue("worker_7.eu-west", CertKind::kWorker);
  IssuedFiles other = issue("worker-8", CertKind::kWorker);
  X509Ptr cert = loadCert(worker.cert_path);
  X509Ptr ca = loadCert(ca_dir_ + "/ca.crt");
  EXPECT_EQ(detail::nameEntry(X509_get_subject_name(cert.get()), NID_commonName),
            "worker_7.eu-west");
  EXPECT_EQ(detail::nameEntry(X509_get_subject_name(cert.get()), NID_organizationName),
            "Test Consortium CA");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_TRUE((X509_get_key_usage(cert.get()) & KU_DIGITAL_SIGNATURE) != 0);
  EXPECT_TRUE((X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN) == 0);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  ASSERT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  ASSERT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert.get()),
                                  X509_get0_subject_key_id(ca.get())),
            0);

  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  detail::BignumPtr number(ASN1_INTEGER_to_BN(serial, nullptr));
  EXPECT_FALSE(BN_is_negative(number.get()));
  EXPECT_LE(BN_num_bits(number.get()), 128);
  EXPECT_GT(BN_num_bits(number.get()), 64);
  EXPECT_NE(certificateSerialHex(worker.cert_path), certificateSerialHex(other.cert_path));
}

TEST_F(PkiTest, BadNamesAreRejectedNamingTheRule) {
  for (const std::string& name :
       {std::string(), std::string("has space"), std::string("a/b"), std::string("../x"),
        std::string(65, 'a'), std::string("tab\tname"), std::string("ünï")}) {
    try {
      issue(name, CertKind::kWorker);
      ADD_FAILURE() << "accepted name '" << name << "'";
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find("1 to 64 characters of A-Z a-z 0-9 . _ -"),
                std::string::npos)
          << error.what();
    }
  }
  EXPECT_NO_THROW(issue(std::string(64, 'z'), CertKind::kWorker));
  EXPECT_FALSE(std::filesystem::exists(out_dir_ + "/has space.key"));
}

TEST_F(PkiTest, BadSanEntriesAndOverlongValidityAreRejected) {
  EXPECT_THROW(issue("c1", CertKind::kCoordinator, {}, {"300.1.1.1"}), std::invalid_argument);
  EXPECT_THROW(issue("c2", CertKind::kCoordinator, {"bad host"}), std::invalid_argument);
  EXPECT_THROW(issue("c3", CertKind::kCoordinator, {"-lead.example"}), std::invalid_argument);
  IssueOptions options;
  options.ca_dir = ca_dir_;
  options.out_dir = out_dir_;
  options.name = "long-lived";
  options.days = 400;
  try {
    issueCertificate(options);
    FAIL() << "a leaf outliving the CA must be refused";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("would outlive the CA"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(out_dir_ + "/long-lived.key"));
}

TEST_F(PkiTest, RefusesToOverwriteAnExistingKey) {
  IssuedFiles first = issue("worker-1", CertKind::kWorker);
  std::string key = readFile(first.key_path);
  EXPECT_THROW(issue("worker-1", CertKind::kWorker), std::runtime_error);
  EXPECT_EQ(readFile(first.key_path), key);

  std::filesystem::remove(first.cert_path);
  try {
    issue("worker-1", CertKind::kWorker);
    FAIL() << "an existing key must never be overwritten";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(first.key_path + " already exists"), std::string::npos);
  }
  EXPECT_EQ(readFile(first.key_path), key);
}

TEST_F(PkiTest, ModesHoldWhateverTheUmask) {
  mode_t previous = ::umask(0077);
  IssuedFiles strict = issue("umask-strict", CertKind::kWorker);
  ::umask(0);
  IssuedFiles loose = issue("umask-loose", CertKind::kWorker);
  ::umask(previous);
  EXPECT_EQ(modeOf(strict.cert_path), 0644u);
  EXPECT_EQ(modeOf(loose.key_path), 0600u);
  EXPECT_EQ(modeOf(loose.cert_path), 0644u);
}

TEST_F(PkiTest, RevocationAccumulatesAndFailsCrlCheckedVerification) {
  IssuedFiles revoked = issue("worker-bad", CertKind::kWorker);
  IssuedFiles kept = issue("worker-good", CertKind::kWorker);
  IssuedFiles later = issue("coordinator", CertKind::kCoordinator);
  long first_number = 0;
  {
    X509CrlPtr crl = loadCrl(ca_dir_ + "/crl.pem");
    detail::Asn1IntegerPtr number(static_cast<ASN1_INTEGER*>(
        X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr)));
    ASSERT_NE(number, nullptr);
    first_number = ASN1_INTEGER_get(number.get());
  }

  EXPECT_TRUE(revokeCertificate(ca_dir_, revoked.cert_path));
  EXPECT_FALSE(revokeCertificate(ca_dir_, revoked.cert_path)) << "revoked already";
  X509Ptr bad = loadCert(revoked.cert_path);
  X509CrlPtr crl = loadCrl(ca_dir_ + "/crl.pem");
  X509_REVOKED* entry = nullptr;
  EXPECT_EQ(X509_CRL_get0_by_serial(crl.get(), &entry,
                                    const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(bad.get()))),
            1);
  EXPECT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())), 1);
  std::string index = readFile(ca_dir_ + "/revoked.txt");
  EXPECT_EQ(index.rfind(certificateSerialHex(revoked.cert_path) + " ", 0), 0u) << index;
  EXPECT_EQ(std::count(index.begin(), index.end(), '\n'), 1);

  EXPECT_EQ(verifyCode(ca_dir_, revoked.cert_path, true, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(verifyCode(ca_dir_, revoked.cert_path, false, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verifyCode(ca_dir_, kept.cert_path, true, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  revokeCertificate(ca_dir_, later.cert_path);
  X509CrlPtr both = loadCrl(ca_dir_ + "/crl.pem");
  EXPECT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(both.get())), 2);
  detail::Asn1IntegerPtr number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(both.get(), NID_crl_number, nullptr, nullptr)));
  EXPECT_EQ(ASN1_INTEGER_get(number.get()), first_number + 3);
  EXPECT_EQ(verifyCode(ca_dir_, revoked.cert_path, true, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(verifyCode(ca_dir_, later.cert_path, true, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(verifyCode(ca_dir_, kept.cert_path, true, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  refreshCrl(ca_dir_);
  EXPECT_EQ(verifyCode(ca_dir_, revoked.cert_path, true, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_REVOKED);
}

TEST_F(PkiTest, RevokeRefusesCertificatesOfAnotherCa) {
  const std::string foreign = root_ + "/foreign";
  initCa({foreign, "Foreign CA", 365});
  IssueOptions options;
  options.ca_dir = foreign;
  options.out_dir = root_ + "/foreign-certs";
  options.name = "intruder";
  options.days = 30;
  IssuedFiles intruder = issueCertificate(options);
  try {
    revokeCertificate(ca_dir_, intruder.cert_path);
    FAIL() << "revoking a foreign certificate must throw";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("was not signed by the CA in " + ca_dir_),
              std::string::npos);
  }
  EXPECT_EQ(readFile(ca_dir_ + "/revoked.txt"), "");
  EXPECT_THROW(revokeCertificate(ca_dir_, ca_dir_ + "/ca.crt"), std::runtime_error);
}

}  // namespace
}  // namespace tapestry::tools
