// The benchmarks end to end at toy sizes: aggregation kernels, the real
// coordinator with lightweight workers over mutual TLS, the real worker
// process; every round completed and every expected report line printed.
// No timing is asserted.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "tools/bench_aggregate.h"
#include "tools/bench_overhead.h"
#include "tools/bench_scale.h"
#include "tools/bench_support.h"
#include "tools/bench_wire.h"

namespace tapestry::tools {
namespace {

const std::string kBinDir = std::string(TAPESTRY_BINARY_DIR) + "/bin";

// Runs `command` with std::cout captured; returns its exit code.
int captured(int (*command)(const std::vector<std::string>&), const std::vector<std::string>& args,
             std::string* out) {
  testing::internal::CaptureStdout();
  int code = command(args);
  std::cout.flush();
  std::fflush(stdout);
  *out = testing::internal::GetCapturedStdout();
  return code;
}

bool hasLine(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern, std::regex::multiline));
}

TEST(BenchSupport, ParsesSizes) {
  EXPECT_EQ(parseByteSize("8M", "--bytes"), 8u << 20);
  EXPECT_EQ(parseByteSize("1GiB", "--bytes"), 1u << 30);
  EXPECT_EQ(parseByteSize("4096", "--bytes"), 4096u);
  EXPECT_EQ(parseCount("10M", "--params"), 10000000u);
  EXPECT_EQ(parseCount("100k", "--params"), 100000u);
  EXPECT_THROW(parseByteSize("8Q", "--bytes"), std::invalid_argument);
  EXPECT_THROW(parseCount("-3", "--params"), std::invalid_argument);
}

TEST(BenchSupport, SyntheticVectorIsSeededAndBounded) {
  auto a = syntheticVector(1001, 5), b = syntheticVector(1001, 5), c = syntheticVector(1001, 6);
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  for (float x : *a) {
    EXPECT_GE(x, -1.0f);
    EXPECT_LT(x, 1.0f);
  }
}

TEST(BenchSmoke, WireReportsThroughputAndRatio) {
  std::string out;
  int code = captured(runBenchWireCommand, {"--bytes", "8M", "--seconds", "0", "--bin-dir", kBinDir}, &out);
  std::cerr << out;
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(hasLine(out, R"(^push 1 \(initial z_0, first contact\): upload)"));
  EXPECT_TRUE(hasLine(out, R"(^push 2 \(round 0\): upload)"));
  EXPECT_TRUE(hasLine(out, R"(^push 3 \(round 1\): upload)"));
  // One worker, plain averaging: the consensus is the pushed vector up to rounding.
  std::smatch check;
  ASSERT_TRUE(std::regex_search(out, check, std::regex(R"(consensus check: max \|z - pushed\| = (\S+))")));
  EXPECT_LT(std::stod(check[1]), 1e-6);
  EXPECT_TRUE(hasLine(out, R"(^upload GB/s: [0-9.]+ \(median of 2 pushes after z_0)"));
  EXPECT_TRUE(hasLine(out, R"(^round trip GB/s: [0-9.]+)"));
  EXPECT_TRUE(hasLine(out, R"(^cpu after z_0: coordinator [0-9.]+ s, worker [0-9.]+ s)"));
  // The ceilings and the peer, measured in the same run.
  EXPECT_TRUE(hasLine(out, R"(^our TLS transport alone .*: [0-9.]+ GB/s \(median of 3\))"));
  EXPECT_TRUE(hasLine(out, R"(^ratio upload / our TLS transport alone: [0-9.]+)"));
  EXPECT_TRUE(hasLine(out, R"(^plain TCP on loopback, no TLS .*: [0-9.]+ GB/s \(median of 3\))"));
  EXPECT_TRUE(hasLine(out, R"(^ratio upload / plain TCP: [0-9.]+)"));
  EXPECT_TRUE(hasLine(out, R"(^disk: .* written and fsync'd in [0-9.]+ s)"));
  // Either the ratio against openssl, or the reason there is none; the same for gRPC.
  EXPECT_TRUE(hasLine(out, R"(^ratio upload / openssl: [0-9.]+)") || hasLine(out, R"(^openssl: .+)"));
  EXPECT_TRUE(hasLine(out, R"(^ratio upload / gRPC upload: [0-9.]+)") || hasLine(out, R"(^gRPC peer: .+)"));
}

TEST(BenchSmoke, ScaleCompletesEveryRoundWithinTheMemoryReport) {
  std::string out;
  int code = captured(runBenchScaleCommand,
                      {"--workers", "4", "--params", "100k", "--rounds", "2", "--chunk", "16384", "--bin-dir", kBinDir},
                      &out);
  std::cerr << out;
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(hasLine(out, R"(^round 1/2: 4/4 contributors)"));
  EXPECT_TRUE(hasLine(out, R"(^round 2/2: 4/4 contributors)"));
  EXPECT_TRUE(hasLine(out, R"(^all 2 rounds completed by 4 workers$)"));
  EXPECT_TRUE(hasLine(out, R"(^coordinator RSS before any push \(the constant\): )"));
  EXPECT_TRUE(hasLine(out, R"(^coordinator peak RSS: .* = [0-9.]+ x \(3 x P x 4 = )"));
}

TEST(BenchSmoke, AggregateReportsBothArrivalOrdersAgainstMemcpy) {
  std::string out;
  int code = captured(runBenchAggregateCommand,
                      {"--params", "300000", "--workers", "2,3", "--dtype", "fp32,int8", "--device", "cpu", "--threads", "2"},
                      &out);
  std::cerr << out;
  ASSERT_EQ(code, 0);
  for (const char* dtype : {"fp32", "int8"}) {
    for (const char* k : {"2", "3"}) {
      const std::string head = std::string(R"(^cpu  P=300000 K=)") + k + " +" + dtype;
      EXPECT_TRUE(hasLine(out, head + R"( +serial +fold +[0-9.]+ GB/s  ceiling memcpy +[0-9.]+ GB/s  ratio [0-9.]+)"))
          << dtype << " K=" << k;
      EXPECT_TRUE(hasLine(out, head + R"( +concurrent +fold +[0-9.]+ GB/s  ceiling memcpy +[0-9.]+ GB/s  ratio [0-9.]+)"))
          << dtype << " K=" << k;
    }
  }
}

TEST(BenchSmoke, OverheadTimesTheTrainerAndTheWholeWorkerAgainstPlainLibTorch) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  std::string out;
  int code = captured(runBenchOverheadCommand,
                      {"--model-json", R"({"name":"mlp","hidden":32})", "--steps", "10", "--repeats", "1", "--limit",
                       "1000", "--fed-rounds", "3", "--bin-dir", kBinDir},
                      &out);
  std::cerr << out;
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(hasLine(out, R"(^ratio tapestry / plain: [0-9.]+)"));
  EXPECT_TRUE(hasLine(out, R"(^worker, synchronous rounds: [0-9.]+ ms/step \(median of 1 rounds)"));
  EXPECT_TRUE(hasLine(out, R"(^worker, transfer.overlap: [0-9.]+ ms/step)"));
  EXPECT_TRUE(hasLine(out, R"(^ratio worker \(overlap\) / plain: [0-9.]+)"));
}

TEST(BenchSmoke, RejectsUnknownOptions) {
  std::string out;
  EXPECT_EQ(captured(runBenchWireCommand, {"--bogus", "1"}, &out), 2);
  EXPECT_EQ(captured(runBenchScaleCommand, {"--workers"}, &out), 2);
  EXPECT_EQ(captured(runBenchAggregateCommand, {"--dtype", "fp64"}, &out), 2);
  EXPECT_EQ(captured(runBenchOverheadCommand, {"--fed-rounds", "2"}, &out), 2);
}

}  // namespace
}  // namespace tapestry::tools
