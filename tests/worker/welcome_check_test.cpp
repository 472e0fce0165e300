// A Welcome the worker cannot act on is named before any of it is used.
#include "worker/welcome_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace tapestry::worker {
namespace {

proto::WelcomeToWorker sound() {
  proto::WelcomeToWorker w;
  w.set_algorithm(proto::ALGORITHM_ADMM);
  w.set_rho(0.1);
  w.set_dual_step(0.5);
  w.set_local_steps(50);
  w.set_chunk_elements(1 << 20);
  w.set_round(7);
  return w;
}

void expectProblem(const std::function<void(proto::WelcomeToWorker&)>& spoil, const std::string& named) {
  proto::WelcomeToWorker w = sound();
  spoil(w);
  const std::string problem = welcomeProblem(w);
  EXPECT_NE(problem.find(named), std::string::npos) << "expected '" << named << "' in: " << problem;
}

TEST(WelcomeCheck, ASoundWelcomeHasNoProblem) {
  EXPECT_EQ(welcomeProblem(sound()), "");
  proto::WelcomeToWorker scaffold = sound();
  scaffold.set_algorithm(proto::ALGORITHM_SCAFFOLD);
  scaffold.set_rho(0);
  scaffold.set_correction_scale(0.5);
  EXPECT_EQ(welcomeProblem(scaffold), "");
}

TEST(WelcomeCheck, EachFieldOutOfRangeIsNamed) {
  expectProblem([](auto& w) { w.set_algorithm(proto::ALGORITHM_UNSPECIFIED); }, "unknown algorithm (0)");
  expectProblem([](auto& w) { w.set_algorithm(static_cast<proto::Algorithm>(42)); }, "unknown algorithm (42)");
  expectProblem([](auto& w) { w.set_rho(-1); }, "rho -1");
  expectProblem([](auto& w) { w.set_rho(std::numeric_limits<double>::quiet_NaN()); }, "rho nan");
  expectProblem([](auto& w) { w.set_local_steps(0); }, "0 local steps");
  expectProblem([](auto& w) { w.set_chunk_elements(0); }, "chunks of 0 elements");
  expectProblem([](auto& w) { w.set_chunk_elements((1u << 24) + 1); }, "chunks of 16777217 elements");
  expectProblem([](auto& w) { w.set_round(uint64_t{1} << 63); }, "opens round 9223372036854775808");
  expectProblem([](auto& w) { w.set_dual_step(2); }, "ADMM dual step of 2");
  expectProblem(
      [](auto& w) {
        w.set_algorithm(proto::ALGORITHM_SCAFFOLD);
        w.set_correction_scale(1.5);
      },
      "SCAFFOLD correction scale of 1.5");
}

}  // namespace
}  // namespace tapestry::worker
