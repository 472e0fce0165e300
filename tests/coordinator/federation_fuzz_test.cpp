// Seeded random event scripts against a real Federation (federation_script.h):
// hostile Hellos, lying push headers, garbage and damaged chunks, departures
// mid-push, deadlines, slow disks and crashes at any of those moments. Every
// script must leave the coordinator alive with a finite consensus, never lose
// a durable round, and never wait for chunks from a member that left.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>

#include "common/log.h"
#include "coordinator/federation_script.h"

namespace tapestry::coordinator::testing {
namespace {

class FederationFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override { common::setLogLevel(common::LogLevel::kError); }
  void TearDown() override { common::setLogLevel(common::LogLevel::kInfo); }

  // Plays one script in a fresh state_dir.
  FederationScript::Stats play(const std::vector<uint8_t>& script, const std::string& name) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tapestry_script_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    FederationScript::Stats stats;
    try {
      FederationScript play(script.data(), script.size(), tmpl,
                            [&](const std::string& what) { ADD_FAILURE() << name << ": " << what; });
      stats = play.run();
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": an exception escaped the federation (it would stop the coordinator): " << e.what();
    }
    std::filesystem::remove_all(tmpl);
    return stats;
  }
};

// Builds the events of an honest federation in the script's byte language.
class Script {
 public:
  Script(uint8_t rule, uint8_t policy, uint8_t disk_and_rounds) : bytes_{rule, policy, disk_and_rounds} {}
  Script& hello(uint8_t member) { return event(member, FederationScript::kOpHello, FederationScript::kHonestHello); }
  // A push of an fp32 vector with a true header for the open round, or of
  // the initial vector when the coordinator asked this member for it.
  Script& push(uint8_t member) { return event(member, FederationScript::kOpPush, FederationScript::kHonestPush); }
  Script& chunk(uint8_t member) { return add({op(member, FederationScript::kOpChunk), FederationScript::kHonestChunk}); }
  Script& chunks(uint8_t member) { return chunk(member).chunk(member).chunk(member); }
  Script& round(std::initializer_list<uint8_t> members) {
    for (uint8_t m : members) push(m).chunks(m);
    return *this;
  }
  Script& time(uint8_t quarter_seconds) { return add({FederationScript::kOpTime, quarter_seconds}); }
  Script& raw(uint8_t byte) { return add({byte}); }
  // Replaces one byte of the last event's arguments (or the event itself).
  Script& mutateLast(uint8_t where, uint8_t value) {
    bytes_[bytes_.size() - 1 - where % std::min<size_t>(last_event_size_, bytes_.size())] = value;
    return *this;
  }
  Script& leave(uint8_t member) { return add({op(member, FederationScript::kOpLeave)}); }
  Script& persist() { return add({FederationScript::kOpPersist}); }
  Script& crash(bool after_write) { return add({FederationScript::kOpCrash, static_cast<uint8_t>(after_write)}); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  static uint8_t op(uint8_t member, uint8_t action) { return static_cast<uint8_t>(member << 6 | action); }
  template <size_t N>
  Script& event(uint8_t member, uint8_t action, const uint8_t (&args)[N]) {
    bytes_.push_back(op(member, action));
    bytes_.insert(bytes_.end(), args, args + N);
    last_event_size_ = N + 1;
    return *this;
  }
  Script& add(std::initializer_list<uint8_t> b) {
    last_event_size_ = b.size();
    bytes_.insert(bytes_.end(), b);
    return *this;
  }
  std::vector<uint8_t> bytes_;
  size_t last_event_size_ = 0;
};

// Honest events from four members in random order, each of them hostile
// with some probability: any argument byte replaced by a random one, a
// random event, or a random byte where the script's language expects none.
std::vector<uint8_t> randomScript(uint32_t seed, size_t events) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  Script s(static_cast<uint8_t>(pick(256)), static_cast<uint8_t>(pick(256)), static_cast<uint8_t>(pick(256)));
  int pending[4] = {};  // chunks each member still means to send
  for (size_t e = 0; e < events; ++e) {
    const auto member = static_cast<uint8_t>(pick(4));
    const int what = pick(100);
    if (pending[member] > 0 && what < 90) {
      s.chunk(member);
      --pending[member];
    } else if (what < 10) {
      s.hello(member);
    } else if (what < 45) {
      s.push(member);
      pending[member] = 3;
    } else if (what < 55) {
      s.leave(member);
      pending[member] = 0;
    } else if (what < 75) {
      s.time(static_cast<uint8_t>(pick(256)));
    } else if (what < 90) {
      s.persist();
    } else if (what < 93) {
      s.crash(pick(2));
      for (int& p : pending) p = 0;
    } else if (what < 96) {
      s.chunk(member);
    } else {
      s.raw(static_cast<uint8_t>(pick(256)));
    }
    if (pick(12) == 0) s.mutateLast(static_cast<uint8_t>(pick(256)), static_cast<uint8_t>(pick(256)));
  }
  return s.bytes();
}

TEST_F(FederationFuzzTest, RandomScriptsKeepTheCoordinatorAliveAndItsStateWhole) {
  FederationScript::Stats total;
  size_t reached_round_2 = 0;
  for (uint32_t seed = 1; seed <= 1500 && !HasFailure(); ++seed) {
    auto stats = play(randomScript(seed, 100 + seed % 9 * 50), "seed " + std::to_string(seed));
    total.events += stats.events;
    total.consensuses += stats.consensuses;
    total.restarts += stats.restarts;
    reached_round_2 += stats.round >= 2;
  }
  std::printf("random scripts: %zu events, %zu consensuses, %zu restarts, %zu scripts reached round 2\n", total.events,
              total.consensuses, total.restarts, reached_round_2);
  // The scripts must reach the states worth checking, or passing proves little.
  EXPECT_GT(total.consensuses, 1000u);
  EXPECT_GT(total.restarts, 1000u);
  EXPECT_GT(reached_round_2, 20u);
}

TEST_F(FederationFuzzTest, AnHonestScriptClosesRoundsUnderEveryRuleAndResumesAfterACrash) {
  for (uint8_t rule = 0; rule < 3; ++rule) {
    Script s(rule, 0, 0);  // min_workers 1, quorum 1, unbounded, checkpoints written at once
    s.hello(0).hello(1).push(0).chunks(0);
    s.round({0, 1}).round({1, 0}).round({0, 1});
    s.crash(false).hello(0).round({0});
    const std::string name = "rule " + std::to_string(rule);
    auto stats = play(s.bytes(), name);
    EXPECT_EQ(stats.consensuses, 5u) << name;
    EXPECT_EQ(stats.restarts, 1u) << name;
    EXPECT_EQ(stats.round, 4u) << name;
  }
}

TEST_F(FederationFuzzTest, ACrashBeforeTheCheckpointLosesOnlyTheUnwrittenRound) {
  Script slow(0, 0, 0x80);  // the disk writes only at persist events
  slow.hello(0).push(0).chunks(0).persist();
  slow.round({0}).persist().round({0});  // z_2 is not written yet
  slow.crash(false).hello(0).round({0}).persist();
  auto stats = play(slow.bytes(), "slow disk, crash before the write");
  EXPECT_EQ(stats.round, 2u) << "z_2 was lost with the crash and made again";

  Script written(0, 0, 0x80);
  written.hello(0).push(0).chunks(0).persist();
  written.round({0}).persist().round({0});
  written.crash(true).hello(0).round({0}).persist();
  stats = play(written.bytes(), "slow disk, crash after the write");
  EXPECT_EQ(stats.round, 3u) << "z_2 was on disk when the coordinator crashed";
}

TEST_F(FederationFuzzTest, AMemberLeavingMidPushStillLetsTheRoundClose) {
  Script s(1, 0, 0);  // trimmed mean
  s.hello(0).hello(1).push(0).chunks(0);
  s.push(0).chunk(0).leave(0).round({1});
  auto stats = play(s.bytes(), "a leaves mid-push");
  EXPECT_EQ(stats.round, 1u);
  EXPECT_EQ(stats.consensuses, 2u);
}

}  // namespace
}  // namespace tapestry::coordinator::testing
