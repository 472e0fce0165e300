// `tapestry ca` as a user types it: exit codes, usage text and the files each
// subcommand reports writing.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "tools/pki/pki.h"

namespace tapestry::tools {
namespace {

class CaCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tapestry_ca_cmd_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    ca_ = root_ + "/ca";
    out_ = root_ + "/certs";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  int run(const std::vector<std::string>& args) {
    out_text_.str("");
    err_text_.str("");
    return runCaCommand(args, out_text_, err_text_);
  }

  bool errorMentions(const std::string& text) const {
    return err_text_.str().find(text) != std::string::npos;
  }

  std::string root_;
  std::string ca_;
  std::string out_;
  std::ostringstream out_text_;
  std::ostringstream err_text_;
};

TEST_F(CaCommandTest, UsageErrorsReturnTwoWithUsage) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"init"},
      {"init", "--dir"},
      {"init", "--dir", ca_, "--days", "ten"},
      {"init", "--dir", ca_, "--days", "0"},
      {"init", "--dir", ca_, "--colour", "blue"},
      {"init", "--dir", ca_, "--dir", root_ + "/other"},
      {"issue", "--ca", ca_, "--out", out_, "--name", "w1"},
      {"issue", "--ca", ca_, "--out", out_, "--name", "w1", "--worker", "--coordinator"},
      {"issue", "--ca", ca_, "--out", out_, "--worker"},
      {"revoke", "--ca", ca_},
      {"crl"},
  };
  for (const auto& args : cases) {
    EXPECT_EQ(run(args), 2) << ::testing::PrintToString(args);
    EXPECT_TRUE(errorMentions("usage: tapestry ca init")) << err_text_.str();
  }
  EXPECT_FALSE(std::filesystem::exists(ca_));
  EXPECT_TRUE(run({"init", "--colour", "blue"}) == 2 && errorMentions("unknown option '--colour'"));
}

TEST_F(CaCommandTest, HelpPrintsUsageAndSucceeds) {
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_NE(out_text_.str().find("tapestry ca revoke --ca DIR (--cert FILE | --serial HEX)"), std::string::npos);
}

TEST_F(CaCommandTest, FullLifecycleReportsWrittenFiles) {
  ASSERT_EQ(run({"init", "--dir", ca_, "--name", "Lab CA", "--days=400"}), 0) << err_text_.str();
  EXPECT_NE(out_text_.str().find(ca_ + "/ca.key"), std::string::npos);
  EXPECT_NE(out_text_.str().find(ca_ + "/crl.pem"), std::string::npos);

  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "coord", "--coordinator", "--dns",
                 "coord.lab", "--ip=10.0.0.1", "--days", "90"}),
            0)
      << err_text_.str();
  EXPECT_NE(out_text_.str().find(out_ + "/coord.crt"), std::string::npos);
  EXPECT_NE(out_text_.str().find(out_ + "/coord.key"), std::string::npos);
  EXPECT_EQ(out_text_.str().find("valid for DNS localhost"), std::string::npos) << "names were given";
  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_ + "/local", "--name", "coord2", "--coordinator", "--days", "30"}), 0)
      << err_text_.str();
  EXPECT_NE(out_text_.str().find("valid for DNS localhost, IP 127.0.0.1 and IP ::1 only"), std::string::npos)
      << out_text_.str();
  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "w1", "--worker", "--days", "30"}),
            0)
      << err_text_.str();

  const std::string serial = certificateSerialHex(out_ + "/w1.crt");
  ASSERT_EQ(run({"revoke", "--ca", ca_, "--cert", out_ + "/w1.crt"}), 0) << err_text_.str();
  EXPECT_NE(out_text_.str().find("revoked serial " + serial), std::string::npos);
  ASSERT_EQ(run({"revoke", "--ca", ca_, "--cert", out_ + "/w1.crt"}), 0) << err_text_.str();
  EXPECT_NE(out_text_.str().find("serial " + serial + " (" + out_ + "/w1.crt) was revoked already"), std::string::npos)
      << out_text_.str();
  EXPECT_EQ(run({"crl", "--ca", ca_}), 0);

  EXPECT_EQ(run({"init", "--dir", ca_}), 1);
  EXPECT_TRUE(errorMentions("CA already exists in " + ca_)) << err_text_.str();
  EXPECT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "w1", "--worker", "--days", "30"}),
            1);
  EXPECT_TRUE(errorMentions("already exists")) << err_text_.str();
  EXPECT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "w2", "--worker"}), 2);
  EXPECT_TRUE(errorMentions("pass --days")) << err_text_.str();
}

// One identity, one live certificate: a second needs --renew, and the old one
// can then be revoked by the serial the CA recorded, its file long gone.
TEST_F(CaCommandTest, ASecondLiveCertificateForANameNeedsRenewAndTheOldIsRevokedBySerial) {
  ASSERT_EQ(run({"init", "--dir", ca_}), 0) << err_text_.str();
  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_ + "/a", "--name", "hospital-a", "--worker", "--days", "30"}), 0)
      << err_text_.str();
  const std::string old_serial = certificateSerialHex(out_ + "/a/hospital-a.crt");
  EXPECT_EQ(run({"issue", "--ca", ca_, "--out", out_ + "/b", "--name", "hospital-a", "--worker", "--days", "30"}), 1);
  EXPECT_TRUE(errorMentions("has already issued 'hospital-a' a certificate that is still valid (serial " + old_serial))
      << err_text_.str();
  EXPECT_TRUE(errorMentions("pass --renew")) << err_text_.str();
  EXPECT_FALSE(std::filesystem::exists(out_ + "/b/hospital-a.key"));

  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_ + "/b", "--name", "hospital-a", "--worker", "--days", "30",
                 "--renew"}),
            0)
      << err_text_.str();
  EXPECT_NE(out_text_.str().find("revoke it with tapestry ca revoke --ca " + ca_ + " --serial " + old_serial),
            std::string::npos)
      << out_text_.str();
  std::filesystem::remove_all(out_ + "/a");
  ASSERT_EQ(run({"revoke", "--ca", ca_, "--serial", old_serial}), 0) << err_text_.str();
  EXPECT_NE(out_text_.str().find("revoked serial " + old_serial), std::string::npos) << out_text_.str();
  // The renewed one is now the only live certificate: renewing again names no other.
  ASSERT_EQ(run({"issue", "--ca", ca_, "--out", out_ + "/c", "--name", "hospital-a", "--worker", "--days", "30",
                 "--renew"}),
            0);
  EXPECT_EQ(out_text_.str().find(old_serial), std::string::npos) << out_text_.str();

  EXPECT_EQ(run({"revoke", "--ca", ca_, "--serial", "00ff00ff"}), 1);
  EXPECT_TRUE(errorMentions("has no record of issuing serial")) << err_text_.str();
  EXPECT_EQ(run({"revoke", "--ca", ca_, "--serial", "not-hex"}), 2);
  EXPECT_TRUE(errorMentions("is not a serial number")) << err_text_.str();
  EXPECT_EQ(run({"revoke", "--ca", ca_, "--serial", old_serial, "--cert", "x.crt"}), 2);
}

TEST_F(CaCommandTest, BadValuesAndMissingCaAreReported) {
  EXPECT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "bad name", "--worker"}), 2);
  EXPECT_TRUE(errorMentions("1 to 64 characters")) << err_text_.str();

  EXPECT_EQ(run({"issue", "--ca", ca_, "--out", out_, "--name", "w1", "--worker"}), 1);
  EXPECT_TRUE(errorMentions("pass the directory made by `tapestry ca init` as --ca")) << err_text_.str();
  EXPECT_FALSE(std::filesystem::exists(out_ + "/w1.key"));

  // The CA's key kept offline, as the README suggests: bring it back, not a new CA.
  ASSERT_EQ(run({"init", "--dir", ca_}), 0) << err_text_.str();
  std::filesystem::rename(ca_ + "/ca.key", root_ + "/offline.key");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"issue", "--ca", ca_, "--out", out_, "--name", "w1", "--worker"},
        std::vector<std::string>{"crl", "--ca", ca_}}) {
    EXPECT_EQ(run(args), 1);
    EXPECT_TRUE(errorMentions("bring ca.key back from where it is kept offline")) << err_text_.str();
    EXPECT_TRUE(errorMentions("do not make a new CA")) << err_text_.str();
  }

  EXPECT_EQ(run({"revoke", "--ca", ca_, "--cert", root_ + "/missing.crt"}), 1);
  EXPECT_TRUE(errorMentions("tapestry ca: error:")) << err_text_.str();
}

}  // namespace
}  // namespace tapestry::tools
