#include "tools/bench_aggregate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/payload.h"
#include "coordinator/aggregation/aggregator.h"
#include "tools/bench_support.h"
#include "worker/compressed_push.h"

namespace tapestry::tools {
namespace {

using Clock = std::chrono::steady_clock;
using coordinator::Aggregator;
using coordinator::AggregatorDevice;

constexpr const char* kUsage =
    "usage: tapestry bench aggregate [--params 10M,100M] [--workers 2,8] [--device cpu|cuda|all]\n"
    "                                [--threads N] [--dtype fp32,bf16,fp16,int8] [--quick]\n"
    "Folds K contributions of P parameters and reports input GB/s against a memcpy ceiling of\n"
    "the same bytes measured in this run, for two arrival orders: 'serial' (one whole vector after\n"
    "another, one source buffer reused for all K) and 'concurrent' (K workers pushing at once, so\n"
    "the coordinator folds chunk c of every worker before chunk c+1; each fold reads a different\n"
    "64 MiB-ring slice, so sources come from memory, not cache)\n"
    "(multi-threaded memcpy on the CPU, device-to-device cudaMemcpy on the GPU). 'ratio' is input\n"
    "GB/s over the ceiling; 'traffic ratio' counts every byte the fold moves (payload read, fp32 sum\n"
    "read and written) against the copy's read and write.\n";

struct Options {
  std::vector<uint64_t> params = {10'000'000, 100'000'000};
  std::vector<unsigned> workers = {2, 8};
  std::vector<proto::DType> dtypes = {proto::DTYPE_FP32, proto::DTYPE_BF16, proto::DTYPE_INT8_BLOCK};
  std::string device = "cpu";
  unsigned threads = 0;
};

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) throw std::invalid_argument("empty item in list \"" + text + "\"");
    out.push_back(item);
  }
  return out;
}

// "10M" -> 10'000'000 (bench_support's parser), and at least 1.
uint64_t positiveCount(const std::string& text, const char* what) {
  const uint64_t v = parseCount(text, what);
  if (v == 0) throw std::invalid_argument(std::string(what) + " \"" + text + "\" is not a positive count; write e.g. 1000, 10M or 1G");
  return v;
}

proto::DType parseDtype(const std::string& name) {
  try {
    return worker::parseEncoding(name);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("--dtype \"" + name + "\" is unknown; choose from fp32, bf16, fp16, int8");
  }
}

Options parseOptions(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--quick") {
      o.params = {1'000'000};
      o.workers = {2, 8};
      continue;
    }
    if (i + 1 >= args.size()) throw std::invalid_argument("unknown option or missing value: " + flag);
    const std::string& value = args[++i];
    if (flag == "--params") {
      o.params.clear();
      for (const std::string& item : splitList(value)) o.params.push_back(positiveCount(item, "--params"));
    } else if (flag == "--workers") {
      o.workers.clear();
      for (const std::string& item : splitList(value)) {
        o.workers.push_back(static_cast<unsigned>(std::min<uint64_t>(positiveCount(item, "--workers"), 1u << 20)));
      }
    } else if (flag == "--dtype") {
      o.dtypes.clear();
      for (const std::string& item : splitList(value)) o.dtypes.push_back(parseDtype(item));
    } else if (flag == "--device") {
      if (value != "cpu" && value != "cuda" && value != "all") {
        throw std::invalid_argument("--device \"" + value + "\" is unknown; choose cpu, cuda or all");
      }
      o.device = value;
    } else if (flag == "--threads") {
      o.threads = static_cast<unsigned>(std::min<uint64_t>(positiveCount(value, "--threads"), 1024));
    } else {
      throw std::invalid_argument("unknown option " + flag);
    }
  }
  for (uint64_t p : o.params) {
    if (p > common::kMaxPayloadElements) throw std::invalid_argument("--params " + std::to_string(p) + " is too large");
  }
  return o;
}

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Runs the measurements in turn, round after round (at least 3 rounds, and
// until each has taken 0.3 s in all, at most 20), and stores the fastest run
// of each in *best[i], so that one scheduling hiccup does not set a figure.
void bestOfRounds(const std::vector<std::function<double()>>& measures, const std::vector<double*>& best) {
  std::vector<double> total(measures.size(), 0.0);
  for (int round = 0; round < 20; ++round) {
    bool enough = round >= 3;
    for (size_t i = 0; i < measures.size(); ++i) {
      const double s = measures[i]();
      *best[i] = round == 0 ? s : std::min(*best[i], s);
      total[i] += s;
      enough = enough && total[i] >= 0.3;
    }
    if (enough) return;
  }
}

// Seconds for `repeats` copies of `bytes` bytes, split over `threads` threads.
double memcpySeconds(const uint8_t* src, uint8_t* dst, size_t bytes, unsigned threads, unsigned repeats) {
  const size_t per = (bytes / threads + 63) / 64 * 64;
  auto copy = [&](unsigned part) {
    const size_t begin = std::min(bytes, per * part);
    const size_t end = std::min(bytes, begin + per);
    for (unsigned r = 0; r < repeats; ++r) std::memcpy(dst + begin, src + begin, end - begin);
  };
  copy(0);  // warm-up: faults the destination in
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> helpers;
  for (unsigned part = 1; part < threads; ++part) helpers.emplace_back(copy, part);
  copy(0);
  for (std::thread& t : helpers) t.join();
  return secondsSince(start);
}

struct Source {
  std::vector<float> values;  // kept: the FP32 payload points into it
  common::EncodedPayload payload;
  size_t bytes = 0;
};

Source makeSource(proto::DType dtype, uint64_t params) {
  Source s;
  s.values.resize(params);
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : s.values) v = dist(rng);
  s.payload = common::EncodedPayload::encode(dtype, s.values.data(), s.values.size());
  for (size_t c = 0; c < s.payload.chunks(); ++c) s.bytes += s.payload.chunk(c).second;
  if (dtype != proto::DTYPE_FP32) std::vector<float>().swap(s.values);
  return s;
}

void foldAll(Aggregator& aggregator, const common::EncodedPayload& payload, float weight) {
  const proto::PayloadHeader& h = payload.header();
  for (size_t c = 0; c < payload.chunks(); ++c) {
    const auto chunk = payload.chunk(c);
    const std::error_code ec =
        aggregator.accumulateEncoded(c * h.chunk_elements(), static_cast<coordinator::EncodedDType>(h.dtype()),
                                     chunk.first, common::chunkElementCount(h, c), weight, h.block_elements(), nullptr);
    if (ec) throw std::runtime_error("benchmark payload was rejected: " + ec.message());
  }
}

struct Timing {
  double fold_s = 0.0;
  double finalize_s = 0.0;
};

// Chunks of distinct source bytes for the concurrent order: more than the
// last-level cache holds, so every fold reads its source from memory, as the
// coordinator reads a chunk just decrypted into one of its pool buffers.
constexpr size_t kRingChunks = 16;

Source makeRing(proto::DType dtype) { return makeSource(dtype, kRingChunks * common::kDefaultChunkElements); }

// K workers pushing at once: chunk c of every contribution, then chunk c+1,
// so the sum's chunk stays in cache across the K folds (as in the server,
// where concurrent pushes arrive interleaved chunk by chunk).
double timeConcurrent(Aggregator& aggregator, const common::EncodedPayload& ring, uint64_t params, unsigned workers) {
  const proto::PayloadHeader& h = ring.header();
  const size_t chunk = h.chunk_elements(), chunks = common::chunkCount(params, h.chunk_elements());
  const auto dtype = static_cast<coordinator::EncodedDType>(h.dtype());
  aggregator.reset(params);
  const Clock::time_point start = Clock::now();
  for (size_t c = 0; c < chunks; ++c) {
    const size_t offset = c * chunk, count = std::min<size_t>(chunk, params - offset);
    for (unsigned k = 0; k < workers; ++k) {
      const uint8_t* src = ring.chunk((c * workers + k) % ring.chunks()).first;
      if (aggregator.accumulateEncoded(offset, dtype, src, count, 1.0f, h.block_elements(), nullptr))
        throw std::runtime_error("benchmark payload was rejected");
    }
  }
  return secondsSince(start);
}

// K folds then a plain finalize. finalize waits for the device, so on CUDA
// the fold time is (folds + finalize) minus a finalize on its own.
Timing timeCase(Aggregator& aggregator, const common::EncodedPayload& payload, unsigned workers, bool raw_fp32,
                const float* values) {
  const size_t params = payload.header().element_count();
  std::vector<float> consensus(params, 0.0f);
  aggregator.reset(params);
  foldAll(aggregator, payload, 1.0f);  // warm-up: pages, staging, kernels
  aggregator.finalize(1.0, coordinator::ServerOptimizerSettings{}, consensus.data(), nullptr);
  Timing t;
  Clock::time_point start = Clock::now();
  for (unsigned k = 0; k < workers; ++k) {
    if (raw_fp32) {
      aggregator.accumulate(0, values, params, 1.0f);
    } else {
      foldAll(aggregator, payload, 1.0f);
    }
  }
  const double folded = secondsSince(start);
  start = Clock::now();
  aggregator.finalize(double(workers), coordinator::ServerOptimizerSettings{}, consensus.data(), nullptr);
  const double with_finalize = folded + secondsSince(start);
  aggregator.accumulate(0, consensus.data(), 1, 1.0f);
  start = Clock::now();
  aggregator.finalize(1.0, coordinator::ServerOptimizerSettings{}, consensus.data(), nullptr);
  t.finalize_s = secondsSince(start);
  t.fold_s = aggregator.backendName() == "cpu" ? folded : std::max(1e-9, with_finalize - t.finalize_s);
  return t;
}

std::string humanCount(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000 && n % 1'000'000'000 == 0)
    std::snprintf(buf, sizeof buf, "%lluG", (unsigned long long)(n / 1'000'000'000));
  else if (n >= 1'000'000 && n % 1'000'000 == 0)
    std::snprintf(buf, sizeof buf, "%lluM", (unsigned long long)(n / 1'000'000));
  else
    std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  return buf;
}

void runDevice(AggregatorDevice device, const Options& o) {
  const unsigned threads = o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::unique_ptr<Aggregator> aggregator = coordinator::makeAggregator(device, threads);
  const bool cpu = device == AggregatorDevice::kCpu;
  std::printf("# %s backend%s\n", aggregator->backendName().c_str(),
              cpu ? (", " + std::to_string(threads) + " threads").c_str() : "");
  for (uint64_t params : o.params) {
    for (proto::DType dtype : o.dtypes) {
      const Source source = makeSource(dtype, params);
      const Source ring = makeRing(dtype);
      std::vector<uint8_t> contiguous;
      std::vector<uint8_t> copy_dst;
      for (unsigned workers : o.workers) {
        if (cpu && contiguous.empty()) {
          contiguous.resize(source.bytes);
          size_t at = 0;
          for (size_t c = 0; c < source.payload.chunks(); ++c) {
            const auto chunk = source.payload.chunk(c);
            std::memcpy(contiguous.data() + at, chunk.first, chunk.second);
            at += chunk.second;
          }
          copy_dst.resize(source.bytes);
        }
        // The ceiling, the serial fold and the concurrent fold are measured in
        // turn, round after round, and each keeps its best: on a shared
        // machine the bandwidth drifts over seconds, and interleaving puts
        // the ceiling and the folds under the same conditions.
        Timing t;
        double ceiling_s = 0.0, concurrent_s = 0.0;
        bestOfRounds({[&] {
                        return cpu ? memcpySeconds(contiguous.data(), copy_dst.data(), source.bytes, threads, workers)
                                   : coordinator::cudaDeviceCopySeconds(source.bytes, workers);
                      },
                      [&] {
                        const Timing run = timeCase(*aggregator, source.payload, workers, false, nullptr);
                        t.finalize_s = t.finalize_s == 0.0 ? run.finalize_s : std::min(t.finalize_s, run.finalize_s);
                        return run.fold_s;
                      },
                      [&] { return timeConcurrent(*aggregator, ring.payload, params, workers); }},
                     {&ceiling_s, &t.fold_s, &concurrent_s});
        const double in_bytes = double(source.bytes) * workers;
        const double ceiling_gbs = in_bytes / ceiling_s / 1e9;
        const char* dtype_name = dtype == proto::DTYPE_INT8_BLOCK
                                     ? "int8"
                                     : coordinator::encodedDTypeName(static_cast<coordinator::EncodedDType>(dtype));
        // A copy moves its bytes twice (read, write); a serial fold reads the
        // payload and reads and writes the fp32 sum each time.
        const auto report = [&](const char* order, double fold_s, bool sum_traffic) {
          const double in_gbs = in_bytes / fold_s / 1e9;
          std::printf("%-4s P=%-5s K=%-3u %-4s %-10s fold %7.2f GB/s  ceiling %s %7.2f GB/s  ratio %.2f",
                      aggregator->backendName().c_str(), humanCount(params).c_str(), workers, dtype_name, order,
                      in_gbs, cpu ? "memcpy" : "d2d", ceiling_gbs, in_gbs / ceiling_gbs);
          if (sum_traffic) {
            const double mem_gbs = (in_bytes + 8.0 * double(params) * workers) / fold_s / 1e9;
            std::printf("  traffic ratio %.2f  finalize %7.2f ms", mem_gbs / (2.0 * ceiling_gbs), t.finalize_s * 1e3);
          }
        };
        report("serial", t.fold_s, true);
        std::printf("\n");
        report("concurrent", concurrent_s, false);
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

int runBenchAggregateCommand(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  }
  Options options;
  try {
    options = parseOptions(args);
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench aggregate: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    if (options.device == "cuda" && !coordinator::cudaAggregatorAvailable()) {
      std::cerr << "tapestry bench aggregate: --device cuda, but " << coordinator::cudaUnavailableReason()
                << "; use --device cpu\n";
      return 1;
    }
    if (options.device != "cuda") runDevice(AggregatorDevice::kCpu, options);
    if (options.device != "cpu") {
      if (coordinator::cudaAggregatorAvailable()) {
        runDevice(AggregatorDevice::kCuda, options);
      } else {
        std::printf("# cuda skipped: %s\n", coordinator::cudaUnavailableReason().c_str());
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench aggregate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tapestry::tools
