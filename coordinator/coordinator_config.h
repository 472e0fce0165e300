#pragma once
// The coordinator's typed configuration, parsed once from JSON (unknown keys
// rejected, every error names its field) and passed down as option structs.
#include <chrono>
#include <cstdint>
#include <string>

#include "common/net/tls.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/robust_rule.h"
#include "coordinator/round_logic.h"

namespace tapestry::coordinator {

enum class Algorithm { kFedAvg, kFedProx, kEasgd, kAdmm, kScaffold };

struct CoordinatorConfig {
  std::string federation_id = "tapestry";
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 7300;      // 0: any free port (written to port_file)
  std::string port_file;            // optional: the bound port is written here
  common::net::TlsSettings tls;
  std::string state_dir;            // checkpoint and round log live here
  // The federation's model, pinned by the operator (`tapestry fingerprint`
  // prints both); empty / 0: set by the first member to say Hello.
  std::string model_fingerprint;
  uint64_t model_parameters = 0;

  Algorithm algorithm = Algorithm::kFedProx;
  double rho = 0.01;
  double dual_step = 0.1;           // ADMM only: u <- u + dual_step (w - z)
  double correction_scale = 1.0;    // SCAFFOLD only: share of the drift correction applied
  // SCAFFOLD only: each round in which members' training diverged halves the
  // scale in effect, down to this floor (equal to correction_scale: never).
  double min_correction_scale = 0.0625;
  uint32_t local_steps = 50;
  uint64_t init_seed = 1;

  RoundPolicy rounds;
  // A late push (rounds.max_staleness) counts with its sample count times
  // (1 + staleness)^-staleness_exponent.
  double staleness_exponent = 0.5;
  ServerOptimizerSettings server_optimizer;
  AggregatorDevice device = AggregatorDevice::kAuto;
  unsigned cpu_threads = 0;
  // mean: the sample-weighted mean, streamed (O(P)). trimmed_mean and median
  // keep every contribution of a round (O(K·P)) and ignore sample counts.
  AggregationRule rule = AggregationRule::kMean;
  double trim_fraction = 0.2;  // trimmed_mean: share dropped at each end

  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds heartbeat_interval{5000};
  uint32_t chunk_elements = 1u << 20;
  size_t max_sessions = 1024;
  // TLS handshakes in progress from one IP address: a host that opens
  // connections and never finishes them cannot take every session slot.
  size_t max_handshakes_per_address = 8;
  // After the last round: how long to wait for members that have not yet
  // fetched the final consensus before exiting.
  std::chrono::milliseconds final_linger{120000};
  // Chunk receive buffers shared by all sessions: memory for chunks in flight
  // is inflight_chunks x chunk bytes, whatever the number of workers.
  size_t inflight_chunks = 4;
};

// Parses `path`; relative paths inside resolve against `base_dir` (the
// config file's directory when empty). Throws common::ConfigError.
CoordinatorConfig loadCoordinatorConfig(const std::string& path, const std::string& base_dir = "");

const char* algorithmName(Algorithm a);

}  // namespace tapestry::coordinator
