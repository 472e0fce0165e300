#include "tools/bench_wire.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>

#include "common/payload.h"
#include "tools/bench_support.h"
#include "tools/bench_wire_ceiling.h"
#include "tools/local_federation.h"

namespace tapestry::tools {

namespace {

using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: tapestry bench wire [--bytes SIZE] [--seconds S] [--chunk N] [--work DIR] [--bin-dir DIR]\n"
    "  --bytes SIZE   vector size pushed per round (default 1G = 2^30 bytes of fp32)\n"
    "  --seconds S    keep pushing rounds for S seconds after the initial z_0 (default 20; at least 2 rounds)\n"
    "  --chunk N      elements per chunk (default 1048576, as the coordinator's default)\n"
    "  --work DIR     certificates, coordinator state and log (default: a temporary directory)\n"
    "  --bin-dir DIR  where tapestry-coordinator is (default: next to this executable)\n";

struct Trip {
  double upload_seconds = 0;
  double round_trip_seconds = 0;
};

double secondsBetween(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Waits for the next consensus; throws on anything else that matters.
worker::ClientEvent nextConsensus(worker::SyncClient& client, BenchCoordinator& coordinator) {
  for (;;) {
    worker::ClientEvent e = client.next();
    switch (e.kind) {
      case worker::ClientEvent::Kind::kConsensus: return e;
      case worker::ClientEvent::Kind::kInitialRequest: break;
      case worker::ClientEvent::Kind::kError:
        throw std::runtime_error("the coordinator refused a push: " + e.error.message());
      case worker::ClientEvent::Kind::kClosed:
        throw std::runtime_error("the coordinator closed the session (" + e.detail + "); its log ends with:\n" +
                                 coordinator.logTail(15));
      case worker::ClientEvent::Kind::kInterrupted: throw std::logic_error("the bench never interrupts its client");
    }
  }
}

// `openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3`, one process:
// bytes per second, or nullopt (with the reason in `why`).
std::optional<double> opensslAesGcm(std::string* why) {
  if (access("/usr/bin/openssl", X_OK) != 0 && std::system("command -v openssl >/dev/null 2>&1") != 0) {
    *why = "the openssl command-line tool is not installed (Debian package openssl)";
    return std::nullopt;
  }
  FILE* pipe = popen("openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null", "r");
  if (!pipe) {
    *why = "cannot run openssl";
    return std::nullopt;
  }
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  int status = pclose(pipe);
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name, value;
    // The result row: "AES-256-GCM    4271364.65k", in 1000s of bytes per second.
    if (!(fields >> name >> value) || (name != "AES-256-GCM" && name != "aes-256-gcm")) continue;
    if (value.empty() || value.back() != 'k') continue;
    try {
      return std::stod(value.substr(0, value.size() - 1)) * 1000.0;
    } catch (const std::exception&) {
    }
  }
  *why = "could not read the 16384-byte column of openssl speed (exit status " + std::to_string(status) + ")";
  return std::nullopt;
}

// The gRPC peer (tools/grpc_wire): a server process with the coordinator's
// certificate and a client process with worker 0's, moving the same bytes in
// messages of one chunk. Upload and download GB/s, or nullopt with `why`.
struct GrpcFigures {
  double upload = 0, download = 0;
};

std::optional<GrpcFigures> grpcPeer(const BenchCoordinator& coordinator, const std::string& bin_dir, uint64_t bytes,
                                    uint64_t chunk_bytes, int repeats, std::string* why) {
  const std::string program = bin_dir + "/tapestry-grpc-wire";
  if (access(program.c_str(), X_OK) != 0) {
    *why = program + " was not built (install libgrpc++-dev and protobuf-compiler-grpc, then rebuild)";
    return std::nullopt;
  }
  const std::string dir = coordinator.workDir(), port_file = dir + "/grpc.port";
  const auto server_tls = coordinator.coordinatorTls();
  const auto client_tls = coordinator.clientOptions(0).tls;
  ChildProcess server = ChildProcess::spawn({program, "serve", "--ca", server_tls.ca_file, "--cert", server_tls.cert_file,
                                             "--key", server_tls.key_file, "--port-file", port_file},
                                            dir + "/grpc-server.log");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (access(port_file.c_str(), R_OK) != 0) {
    if (!server.running() || Clock::now() > deadline) {
      *why = "the gRPC server did not start; " + dir + "/grpc-server.log ends with:\n" +
             logTail(dir + "/grpc-server.log", 10);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string port;
  std::ifstream(port_file) >> port;
  const std::string log = dir + "/grpc-client.log";
  ChildProcess client = ChildProcess::spawn(
      {program, "push", "--ca", client_tls.ca_file, "--cert", client_tls.cert_file, "--key", client_tls.key_file,
       "--port", port, "--bytes", std::to_string(bytes), "--chunk", std::to_string(chunk_bytes), "--repeats",
       std::to_string(repeats)},
      log);
  const auto code = client.wait(std::chrono::minutes(10));
  server.signal(SIGTERM);
  server.wait(std::chrono::seconds(10));
  std::optional<double> upload, download;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    std::printf("  %s\n", line.c_str());
    const auto value = [&](const std::string& prefix) -> std::optional<double> {
      if (line.rfind(prefix, 0) != 0) return std::nullopt;
      return std::stod(line.substr(prefix.size()));
    };
    if (auto v = value("grpc upload GB/s: ")) upload = v;
    if (auto v = value("grpc download GB/s: ")) download = v;
  }
  if (code != 0 || !upload || !download) {
    *why = "the gRPC client failed (exit " + (code ? std::to_string(*code) : std::string("timeout")) + "); see " + log;
    return std::nullopt;
  }
  return GrpcFigures{*upload, *download};
}

int runWire(uint64_t bytes, double seconds, uint32_t chunk, const std::string& work, const std::string& bin_dir_arg) {
  const uint64_t count = bytes / sizeof(float);
  if (count == 0) throw std::invalid_argument("--bytes must be at least 4");
  const double payload = static_cast<double>(count * sizeof(float));
  const size_t chunk_bytes = size_t{chunk} * sizeof(float);
  std::cout << "== tapestry bench wire: " << formatBytes(payload) << " vector (" << count << " fp32), chunks of "
            << chunk << " elements, one lightweight worker, loopback mutual TLS 1.3, "
            << std::thread::hardware_concurrency() << " CPU cores shared by both ends\n";
  auto values = syntheticVector(count, 1);

  BenchCoordinatorOptions options;
  options.work_dir = work;
  options.binary_dir = bin_dir_arg;
  options.rounds = 1000000;  // the bench decides when to stop
  options.chunk_elements = chunk;
  BenchCoordinator coordinator(options);
  const std::string bin_dir = bin_dir_arg.empty() ? executableDir() : bin_dir_arg;
  coordinator.start();
  worker::SyncClient client(coordinator.clientOptions(0));
  proto::WelcomeToWorker welcome;
  std::string message;
  bool permanent = false;
  if (auto ec = client.connect(BenchCoordinator::hello(count, 1000), &welcome, &message, &permanent))
    throw std::runtime_error("cannot connect to the coordinator: " + message);
  if (!welcome.send_initial()) throw std::runtime_error("the coordinator did not ask for the initial vector");

  std::vector<Trip> trips;
  double max_error = -1;
  auto window_start = Clock::now();
  double coordinator_cpu0 = 0, self_cpu0 = 0;
  for (uint64_t round = 0;;) {
    proto::PushFromWorker push;
    push.set_round(round);
    push.set_initial(trips.empty());
    push.set_sample_count(1000);
    push.set_metric(std::numeric_limits<double>::quiet_NaN());
    PushCompletion completion;
    const auto start = Clock::now();
    // FP32 is sent from `values` as it is: each chunk's CRC32C is taken as
    // the chunk goes out, so there is no encoding pass before the first byte.
    auto encoded = std::make_shared<const common::EncodedPayload>(
        common::EncodedPayload::encode(proto::DTYPE_FP32, values->data(), values->size(), chunk));
    client.push(std::move(push), std::move(encoded), completion.wrap(values));
    const auto uploaded = completion.wait();
    worker::ClientEvent e = nextConsensus(client, coordinator);
    const auto back = Clock::now();
    trips.push_back({secondsBetween(start, uploaded), secondsBetween(start, back)});
    const Trip& t = trips.back();
    std::printf("push %zu (%s): upload %.3f s (%.2f GB/s), round trip %.3f s (%.2f GB/s)\n", trips.size(),
                trips.size() == 1 ? "initial z_0, first contact" : ("round " + std::to_string(round)).c_str(),
                t.upload_seconds, payload / t.upload_seconds / 1e9, t.round_trip_seconds,
                2 * payload / t.round_trip_seconds / 1e9);
    std::fflush(stdout);
    if (e.consensus->size() != count) throw std::runtime_error("the consensus has the wrong size");
    if (trips.size() == 2) {
      // One worker, fedavg, plain server step: the consensus is what it pushed.
      max_error = 0;
      for (size_t i = 0; i < count; ++i)
        max_error = std::max(max_error, static_cast<double>(std::fabs((*e.consensus)[i] - (*values)[i])));
    }
    e.consensus.reset();
    round = e.round;
    if (trips.size() == 1) {  // the steady state starts after z_0
      window_start = Clock::now();
      coordinator_cpu0 = readProcessCpuSeconds(coordinator.pid()).value_or(0);
      self_cpu0 = selfCpuSeconds();
    }
    if (trips.size() >= 3 && secondsBetween(window_start, Clock::now()) >= seconds) break;
  }
  const double wall = secondsBetween(window_start, Clock::now());
  const double coordinator_cpu = readProcessCpuSeconds(coordinator.pid()).value_or(0) - coordinator_cpu0;
  const double self_cpu = selfCpuSeconds() - self_cpu0;
  client.goodbye("bench finished");
  coordinator.stop();

  std::vector<double> upload_rates, trip_rates;
  for (size_t i = 1; i < trips.size(); ++i) {
    upload_rates.push_back(payload / trips[i].upload_seconds / 1e9);
    trip_rates.push_back(2 * payload / trips[i].round_trip_seconds / 1e9);
  }
  const double upload = median(upload_rates), trip = median(trip_rates);
  std::printf("consensus check: max |z - pushed| = %.3g\n", max_error);
  std::printf("cpu after z_0: coordinator %.2f s, worker %.2f s over %.2f s wall (%.2f + %.2f cores)\n",
              coordinator_cpu, self_cpu, wall, coordinator_cpu / wall, self_cpu / wall);

  std::printf("== ceilings and peers, same run\n");
  std::fflush(stdout);
  const auto transport = tlsTransportSeconds(coordinator.coordinatorTls(), coordinator.clientOptions(0).tls,
                                             reinterpret_cast<const uint8_t*>(values->data()),
                                             static_cast<size_t>(payload), chunk_bytes, 3);
  const double transport_rate = payload / median(transport) / 1e9;
  std::printf("our TLS transport alone (two Connections on two threads, chunk frames checked and dropped): "
              "%.3f GB/s (median of %zu)\n",
              transport_rate, transport.size());
  const auto tcp = plainTcpSeconds(reinterpret_cast<const uint8_t*>(values->data()), static_cast<size_t>(payload), 3);
  const double tcp_rate = payload / median(tcp) / 1e9;
  std::printf("plain TCP on loopback, no TLS (sender and receiver on two threads): %.3f GB/s (median of %zu)\n",
              tcp_rate, tcp.size());
  const double disk_s =
      fsyncedWriteSeconds(coordinator.workDir(), reinterpret_cast<const uint8_t*>(values->data()), payload);
  std::printf("disk: %s written and fsync'd in %.3f s (%.2f GB/s); a round trip waits for the consensus "
              "checkpoint, which is written while the consensus streams back\n",
              formatBytes(payload).c_str(), disk_s, payload / disk_s / 1e9);
  std::string why;
  const auto ceiling = opensslAesGcm(&why);
  if (ceiling) std::printf("openssl speed -evp aes-256-gcm, 16384-byte blocks, one core: %.3f GB/s\n", *ceiling / 1e9);
  else std::printf("openssl: %s\n", why.c_str());
  std::fflush(stdout);
  const auto grpc = grpcPeer(coordinator, bin_dir, static_cast<uint64_t>(payload), chunk_bytes, 3, &why);
  if (grpc)
    std::printf("gRPC C++ over mutual TLS, the same bytes in messages of one chunk: upload %.3f GB/s, download %.3f "
                "GB/s\n",
                grpc->upload, grpc->download);
  else
    std::printf("gRPC peer: %s\n", why.c_str());

  std::printf("== results\n");
  std::printf("upload GB/s: %.3f (median of %zu pushes after z_0; push until the last chunk is written)\n", upload,
              upload_rates.size());
  std::printf("round trip GB/s: %.3f (median; 2 x %s per push -> fold -> durable checkpoint -> consensus back)\n", trip,
              formatBytes(payload).c_str());
  std::printf("ratio upload / our TLS transport alone: %.3f\n", upload / transport_rate);
  std::printf("ratio upload / plain TCP: %.3f\n", upload / tcp_rate);
  if (ceiling) {
    const double openssl = *ceiling / 1e9;
    std::printf("ratio upload / openssl: %.3f (target >= 0.6)\n", upload / openssl);
    std::printf("ratio round trip / openssl: %.3f\n", trip / openssl);
  }
  if (grpc) std::printf("ratio upload / gRPC upload: %.2f (target >= 2)\n", upload / grpc->upload);
  return 0;
}

}  // namespace

int runBenchWireCommand(const std::vector<std::string>& args) {
  uint64_t bytes = uint64_t{1} << 30;
  double seconds = 20;
  uint32_t chunk = 1u << 20;
  std::string work, bin_dir;
  try {
    BenchArgs a(args, {"--bytes", "--seconds", "--chunk", "--work", "--bin-dir"});
    if (a.help()) {
      std::cout << kUsage;
      return 0;
    }
    if (auto v = a.get("--bytes")) bytes = parseByteSize(*v, "--bytes");
    if (auto v = a.get("--seconds")) seconds = std::stod(*v);
    if (auto v = a.get("--chunk")) chunk = static_cast<uint32_t>(parseCount(*v, "--chunk"));
    work = a.get("--work").value_or("");
    bin_dir = a.get("--bin-dir").value_or("");
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench wire: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    return runWire(bytes, seconds, chunk, work, bin_dir);
  } catch (const std::exception& e) {
    std::cerr << "tapestry bench wire failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::tools
