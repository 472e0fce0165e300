// The coordinator's durable state at start: a damaged checkpoint offers
// best.ckpt, and a state_dir that lost its checkpoint but keeps a
// federation's history is not silently started over.
#include "coordinator/federation_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace tapestry::coordinator {
namespace {

namespace fs = std::filesystem;

class FederationStateStart : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("tapestry-state-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    FederationState s;
    s.federation_id = "unit";
    s.round = 3;
    s.has_consensus = true;
    s.fingerprint = "f";
    s.model_spec = "{}";
    s.parameter_count = 4;
    saveFederationState(s, {1, 2, 3, 4}, {}, dir_);
    fs::copy_file(checkpointPath(dir_), best());
    std::ofstream(rounds()) << "{\"round\":1}\n{\"round\":2}\n{\"round\":3}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string best() const { return dir_ + "/best.ckpt"; }
  std::string rounds() const { return dir_ + "/rounds.jsonl"; }
  std::string startError() {
    try {
      loadFederationState(dir_);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  }

  std::string dir_;
};

TEST_F(FederationStateStart, ALostCheckpointWithHistoryIsRefusedNotStartedOver) {
  fs::remove(checkpointPath(dir_));
  const std::string what = startError();
  EXPECT_NE(what.find("holds the history of a federation (rounds.jsonl up to round 3 and best.ckpt)"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("cp " + best() + " " + checkpointPath(dir_)), std::string::npos) << what;
  EXPECT_NE(what.find("holds consensus z_3"), std::string::npos) << what;
  std::ifstream in(rounds());
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "{\"round\":1}\n{\"round\":2}\n{\"round\":3}\n");

  fs::copy_file(best(), checkpointPath(dir_));  // what the message says to do
  const auto resumed = loadFederationState(dir_);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->round, 3u);
  EXPECT_EQ(resumed->consensus, (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(FederationStateStart, HistoryWithoutBestIsRefusedToo) {
  fs::remove(checkpointPath(dir_));
  fs::remove(best());
  const std::string what = startError();
  EXPECT_NE(what.find("(rounds.jsonl up to round 3)"), std::string::npos) << what;
  EXPECT_NE(what.find("move rounds.jsonl and best.ckpt out of"), std::string::npos) << what;
}

TEST_F(FederationStateStart, AFreshOrEmptyStateDirStartsANewFederation) {
  fs::remove(checkpointPath(dir_));
  fs::remove(best());
  std::ofstream(rounds(), std::ios::trunc);  // what a coordinator that never closed a round leaves
  EXPECT_FALSE(loadFederationState(dir_).has_value());
  EXPECT_FALSE(loadFederationState(dir_ + "/never-used").has_value());
}

TEST_F(FederationStateStart, ADamagedCheckpointOffersBest) {
  {
    std::fstream f(checkpointPath(dir_), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x5a');
  }
  const std::string what = startError();
  EXPECT_NE(what.find("is damaged"), std::string::npos) << what;
  EXPECT_NE(what.find("holds consensus z_3, the best the members rated"), std::string::npos) << what;
  EXPECT_EQ(what.find("delete it to start fresh"), std::string::npos) << what;
}

}  // namespace
}  // namespace tapestry::coordinator
