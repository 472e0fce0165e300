#include "tools/bench_scale.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <limits>
#include <mutex>
#include <thread>

#include "tools/bench_support.h"
#include "tools/local_federation.h"

namespace tapestry::tools {

namespace {

using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: tapestry bench scale [--workers K] [--params P] [--rounds R] [--chunk N] [--work DIR] [--bin-dir DIR]\n"
    "  --workers K    lightweight workers, each with its own certificate and session (default 64)\n"
    "  --params P     fp32 parameters per vector, e.g. 10M (default 10M)\n"
    "  --rounds R     rounds after the initial z_0 (default 3)\n"
    "  --chunk N      elements per chunk (default 1048576, as the coordinator's default)\n"
    "  --work DIR     certificates, coordinator state and log (default: a temporary directory)\n"
    "  --bin-dir DIR  where tapestry-coordinator is (default: next to this executable)\n";

struct ScalePlan {
  size_t workers = 64;
  uint64_t params = 10000000;
  uint64_t rounds = 3;
  uint32_t chunk = 1u << 20;
  std::string work, bin_dir;
};

// What the worker threads share: the connection barrier before the first
// push, consensus arrival times per round and worker, and the coordinator's
// memory read when the last worker has a round's consensus.
class ScaleRun {
 public:
  ScaleRun(const ScalePlan& plan, BenchCoordinator& coordinator)
      : plan_(plan),
        coordinator_(coordinator),
        arrivals_(plan.rounds + 1, std::vector<Clock::time_point>(plan.workers)),
        arrived_(plan.rounds + 1),
        memory_(plan.rounds + 1) {}

  // Lightweight worker k: connect, push z_0 when asked (after everyone has
  // connected), push `values` for every consensus until the final one.
  void worker(size_t k, const std::shared_ptr<const std::vector<float>>& values) {
    session(k, values);
    std::lock_guard<std::mutex> lock(mutex_);
    ++finished_;
    cv_.notify_all();
  }

  // Blocks until every worker is connected (true) or one failed (false).
  bool waitConnected() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return connected_ == plan_.workers || !errors_.empty(); });
    return errors_.empty();
  }
  // Blocks until every worker has finished (true) or one failed (false).
  bool waitFinished() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return finished_ == plan_.workers || !errors_.empty(); });
    return errors_.empty();
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

  const std::vector<std::string>& errors() const { return errors_; }
  size_t arrivedCount(uint64_t round) const { return arrived_[round]; }
  // From the first arrival of z_{r-1} to the last arrival of z_r.
  double roundSeconds(uint64_t r) const {
    auto first = *std::min_element(arrivals_[r - 1].begin(), arrivals_[r - 1].end());
    auto last = *std::max_element(arrivals_[r].begin(), arrivals_[r].end());
    return std::chrono::duration<double>(last - first).count();
  }
  double initialSeconds() const {
    auto last = *std::max_element(arrivals_[0].begin(), arrivals_[0].end());
    return std::chrono::duration<double>(last - initial_start_).count();
  }
  const ProcessMemory& memoryAfter(uint64_t round) const { return memory_[round]; }

 private:
  void session(size_t k, const std::shared_ptr<const std::vector<float>>& values) {
    worker::SyncClient client(coordinator_.clientOptions(k));
    proto::WelcomeToWorker welcome;
    std::string message;
    bool permanent = false;
    const uint64_t samples = 1000 + k;
    if (client.connect(BenchCoordinator::hello(plan_.params, samples), &welcome, &message, &permanent))
      return fail("worker " + std::to_string(k) + " could not connect: " + message);
    connected();
    if (welcome.send_initial()) pushInitial(client, values, samples);
    for (;;) {
      worker::ClientEvent e = client.next();
      using Kind = worker::ClientEvent::Kind;
      if (e.kind == Kind::kInitialRequest) {
        pushInitial(client, values, samples);
      } else if (e.kind == Kind::kError) {
        fail("worker " + std::to_string(k) + ": the coordinator said " + e.error.message());
      } else if (e.kind == Kind::kClosed) {
        return fail("worker " + std::to_string(k) + ": session closed early (" + e.detail + ")");
      } else {
        const bool wrong_size = e.consensus->size() != plan_.params;
        e.consensus.reset();
        if (wrong_size) return fail("worker " + std::to_string(k) + ": consensus of the wrong size");
        arrived(e.round, k);
        if (e.final) break;
        proto::PushFromWorker push;
        push.set_round(e.round);
        push.set_sample_count(samples);
        push.set_metric(std::numeric_limits<double>::quiet_NaN());
        client.push(std::move(push), values, proto::DTYPE_FP32, plan_.chunk);
      }
    }
    client.goodbye("bench finished");
    while (client.next().kind != worker::ClientEvent::Kind::kClosed) {
    }
  }

  void connected() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++connected_;
    cv_.notify_all();
  }

  void pushInitial(worker::SyncClient& client, const std::shared_ptr<const std::vector<float>>& values,
                   uint64_t samples) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return released_; });
    }
    proto::PushFromWorker push;
    push.set_round(0);
    push.set_initial(true);
    push.set_sample_count(samples);
    push.set_metric(std::numeric_limits<double>::quiet_NaN());
    initial_start_ = Clock::now();
    client.push(std::move(push), values, proto::DTYPE_FP32, plan_.chunk);
  }

  void arrived(uint64_t round, size_t k) {
    if (round > plan_.rounds) return fail("consensus for round " + std::to_string(round) + " beyond rounds.max");
    arrivals_[round][k] = Clock::now();
    if (++arrived_[round] == plan_.workers)
      memory_[round] = readProcessMemory(coordinator_.pid()).value_or(ProcessMemory{});
  }

  void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.push_back(what);
    cv_.notify_all();
  }

  const ScalePlan& plan_;
  BenchCoordinator& coordinator_;
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t connected_ = 0, finished_ = 0;
  bool released_ = false;
  std::vector<std::string> errors_;
  Clock::time_point initial_start_;
  std::vector<std::vector<Clock::time_point>> arrivals_;  // [round][worker]
  std::vector<std::atomic<size_t>> arrived_;
  std::vector<ProcessMemory> memory_;  // the coordinator's, when the last worker had z_round
};

double mb(uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

int runScale(const ScalePlan& plan) {
  const double vector_bytes = static_cast<double>(plan.params * sizeof(float));
  const double bound = 3 * vector_bytes;
  std::printf("== tapestry bench scale: %zu lightweight workers x %llu params (%s fp32 each), %llu rounds, chunks of "
              "%u elements, loopback mutual TLS 1.3\n",
              plan.workers, static_cast<unsigned long long>(plan.params), formatBytes(vector_bytes).c_str(),
              static_cast<unsigned long long>(plan.rounds), plan.chunk);
  std::fflush(stdout);
  auto cert_start = Clock::now();
  BenchCoordinatorOptions options;
  options.work_dir = plan.work;
  options.binary_dir = plan.bin_dir;
  options.workers = plan.workers;
  options.rounds = plan.rounds;
  options.chunk_elements = plan.chunk;
  BenchCoordinator coordinator(options);
  std::printf("certificates: a CA, the coordinator and %zu workers issued in %.2f s\n", plan.workers,
              std::chrono::duration<double>(Clock::now() - cert_start).count());
  coordinator.start();
  // One buffer, pushed by every worker, keeps the bench itself small.
  std::shared_ptr<const std::vector<float>> values = syntheticVector(plan.params, 11);

  ScaleRun run(plan, coordinator);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < plan.workers; ++k) threads.emplace_back([&run, &values, k] { run.worker(k, values); });
  const bool all_connected = run.waitConnected();
  const ProcessMemory before = readProcessMemory(coordinator.pid()).value_or(ProcessMemory{});
  if (all_connected)
    std::printf("coordinator RSS before any push (the constant): %.2f MB with %zu sessions connected\n",
                mb(before.rss_bytes), plan.workers);
  std::fflush(stdout);
  run.release();
  // On the first failure the coordinator goes, which closes every session.
  run.waitFinished();
  const ProcessMemory final_memory = readProcessMemory(coordinator.pid()).value_or(ProcessMemory{});
  coordinator.stop();
  for (auto& t : threads) t.join();

  for (const auto& e : run.errors()) std::fprintf(stderr, "scale: %s\n", e.c_str());
  const auto log = readRoundLog(coordinator.statePath("coordinator/rounds.jsonl"));
  bool complete = run.errors().empty() && log.size() == plan.rounds;
  if (run.arrivedCount(0) == plan.workers)
    std::printf("initial z_0: %.2f s from the push to the last of %zu workers receiving it\n", run.initialSeconds(),
                plan.workers);
  for (uint64_t r = 1; r <= plan.rounds; ++r) {
    if (r > log.size() || run.arrivedCount(r) != plan.workers || run.arrivedCount(r - 1) != plan.workers) {
      std::printf("round %llu/%llu: did not complete\n", static_cast<unsigned long long>(r),
                  static_cast<unsigned long long>(plan.rounds));
      complete = false;
      continue;
    }
    const RoundLogEntry& entry = log[r - 1];
    if (entry.contributors != plan.workers) complete = false;
    std::printf("round %llu/%llu: %llu/%zu contributors, %.2f s (coordinator, open to close), %.2f s (first z_%llu to "
                "last z_%llu received), %s received, coordinator peak RSS so far %.2f MB\n",
                static_cast<unsigned long long>(r), static_cast<unsigned long long>(plan.rounds),
                static_cast<unsigned long long>(entry.contributors), plan.workers, entry.seconds, run.roundSeconds(r),
                static_cast<unsigned long long>(r - 1), static_cast<unsigned long long>(r),
                formatBytes(static_cast<double>(entry.bytes_received)).c_str(), mb(run.memoryAfter(r).peak_bytes));
  }
  if (complete)
    std::printf("all %llu rounds completed by %zu workers\n", static_cast<unsigned long long>(plan.rounds), plan.workers);
  uint64_t peak_bytes = std::max(before.peak_bytes, final_memory.peak_bytes);
  for (uint64_t r = 0; r <= plan.rounds; ++r) peak_bytes = std::max(peak_bytes, run.memoryAfter(r).peak_bytes);
  const double peak = static_cast<double>(peak_bytes);
  const double with_constant = bound + static_cast<double>(before.rss_bytes);
  std::printf("coordinator peak RSS: %.2f MB = %.3f x (3 x P x 4 = %.2f MB); bound 3 x P x 4 + constant = %.2f MB: "
              "%s\n",
              mb(peak_bytes), peak / bound, bound / 1e6, with_constant / 1e6,
              peak <= with_constant ? "holds" : "exceeded");
  std::printf("  (chunks in flight share the coordinator's limits.inflight_chunks receive buffers, default 4 x %.2f MB,"
              " whatever the number of workers)\n",
              plan.chunk * 4 / 1e6);
  std::printf("bench process peak RSS: %.2f MB\n", mb(selfPeakRssBytes()));
  if (!complete) {
    std::fprintf(stderr, "scale: not every round completed; the coordinator's log ends with:\n%s\n",
                 coordinator.logTail(15).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int runBenchScaleCommand(const std::vector<std::string>& args) {
  ScalePlan plan;
  try {
    BenchArgs a(args, {"--workers", "--params", "--rounds", "--chunk", "--work", "--bin-dir"});
    if (a.help()) {
      std::cout << kUsage;
      return 0;
    }
    if (auto v = a.get("--workers")) plan.workers = parseCount(*v, "--workers");
    if (auto v = a.get("--params")) plan.params = parseCount(*v, "--params");
    if (auto v = a.get("--rounds")) plan.rounds = parseCount(*v, "--rounds");
    if (auto v = a.get("--chunk")) plan.chunk = static_cast<uint32_t>(parseCount(*v, "--chunk"));
    plan.work = a.get("--work").value_or("");
    plan.bin_dir = a.get("--bin-dir").value_or("");
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench scale: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    return runScale(plan);
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench scale failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
