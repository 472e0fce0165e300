#include "coordinator/coordinator_config.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/config.h"
#include "common/payload.h"

namespace tapestry::coordinator {

using common::ConfigReader;

const char* algorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kFedAvg: return "fedavg";
    case Algorithm::kFedProx: return "fedprox";
    case Algorithm::kEasgd: return "easgd";
    case Algorithm::kAdmm: return "admm";
    case Algorithm::kScaffold: return "scaffold";
  }
  return "?";
}

namespace {


void readAlgorithm(ConfigReader r, CoordinatorConfig& c) {
  std::string name = r.required<std::string>("name");
  if (name == "fedavg") c.algorithm = Algorithm::kFedAvg;
  else if (name == "fedprox") c.algorithm = Algorithm::kFedProx;
  else if (name == "easgd") c.algorithm = Algorithm::kEasgd;
  else if (name == "admm") c.algorithm = Algorithm::kAdmm;
  else if (name == "scaffold") c.algorithm = Algorithm::kScaffold;
  else r.fail("name", "must be one of fedavg, fedprox, easgd, admm, scaffold; got \"" + name + "\"");
  const bool penalty_free = c.algorithm == Algorithm::kFedAvg || c.algorithm == Algorithm::kScaffold;
  c.rho = r.optional<double>("rho", penalty_free ? 0.0 : c.rho);
  if (c.rho < 0) r.fail("rho", "must be >= 0");
  if (penalty_free && c.rho != 0)
    r.fail("rho", std::string("must be 0 (or absent) for ") + algorithmName(c.algorithm) + ", which has no penalty");
  if (!penalty_free && c.rho == 0)
    r.fail("rho", std::string("must be > 0 for ") + algorithmName(c.algorithm) + "; use fedavg for no penalty");
  if (c.algorithm == Algorithm::kAdmm) {
    c.dual_step = r.optional<double>("dual_step", c.dual_step);
    if (!(c.dual_step > 0 && c.dual_step < 2))
      r.fail("dual_step", "must lie in (0, 2); 0.1 (the default) damps the dual, 1 is textbook ADMM");
  } else if (r.has("dual_step")) {
    r.fail("dual_step", std::string("applies to admm only, not ") + algorithmName(c.algorithm) + "; remove it");
  }
  if (c.algorithm == Algorithm::kScaffold) {
    c.correction_scale = r.optional<double>("correction_scale", c.correction_scale);
    if (!(c.correction_scale > 0 && c.correction_scale <= 1))
      r.fail("correction_scale",
             "must lie in (0, 1]; 1 (the default) is SCAFFOLD, less damps members whose corrections overshoot");
    c.min_correction_scale =
        r.optional<double>("min_correction_scale", std::min(c.min_correction_scale, c.correction_scale));
    if (!(c.min_correction_scale > 0 && c.min_correction_scale <= c.correction_scale))
      r.fail("min_correction_scale",
             "must lie in (0, correction_scale]; the scale is halved after each round in which members' training "
             "diverged, down to this floor (equal to correction_scale: never lowered)");
  } else {
    for (const char* key : {"correction_scale", "min_correction_scale"})
      if (r.has(key)) r.fail(key, std::string("applies to scaffold only, not ") + algorithmName(c.algorithm) + "; remove it");
  }
  c.local_steps = r.optional<uint32_t>("local_steps", c.local_steps);
  if (c.local_steps == 0) r.fail("local_steps", "must be >= 1");
  c.init_seed = r.optional<uint64_t>("init_seed", c.init_seed);
  r.finish();
}

void readModel(ConfigReader r, CoordinatorConfig& c) {
  c.model_fingerprint = r.optional<std::string>("fingerprint", "");
  const bool hex = c.model_fingerprint.size() == 16 &&
                   std::all_of(c.model_fingerprint.begin(), c.model_fingerprint.end(),
                               [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || (ch >= 'a' && ch <= 'f'); });
  if (!c.model_fingerprint.empty() && !hex)
    r.fail("fingerprint", "must be 16 lower-case hex digits, as `tapestry fingerprint --model '<the workers\' model>'` prints");
  c.model_parameters = r.optional<uint64_t>("parameters", 0);
  if (r.has("parameters") && (c.model_parameters == 0 || c.model_parameters > common::kMaxPayloadElements))
    r.fail("parameters", "must be 1.." + std::to_string(common::kMaxPayloadElements));
  r.finish();
}

void readRounds(ConfigReader r, CoordinatorConfig& c) {
  c.rounds.max_rounds = r.optional<uint64_t>("max", 0);
  c.rounds.min_workers = r.optional<size_t>("min_workers", 1);
  if (c.rounds.min_workers == 0) r.fail("min_workers", "must be >= 1");
  c.rounds.quorum = r.optional<size_t>("quorum", c.rounds.min_workers);
  if (c.rounds.quorum == 0) r.fail("quorum", "must be >= 1");
  c.rounds.deadline = r.seconds("deadline_s", c.rounds.deadline);
  c.rounds.push_grace = r.seconds("push_grace_s", c.rounds.deadline, true);
  c.rounds.max_staleness = r.optional<uint64_t>("max_staleness", 0);
  if (c.rounds.max_staleness > 1000) r.fail("max_staleness", "must be 0..1000 rounds");
  c.staleness_exponent = r.optional<double>("staleness_exponent", c.staleness_exponent);
  if (!(c.staleness_exponent >= 0 && c.staleness_exponent <= 10))
    r.fail("staleness_exponent", "must be 0..10 (0: a late push counts fully; 0.5 halves one 3 rounds late)");
  if (r.has("staleness_exponent") && c.rounds.max_staleness == 0)
    r.fail("staleness_exponent", "has no effect while max_staleness is 0 (late pushes are dropped); set "
                                 "max_staleness or remove it");
  if (c.rounds.max_staleness > 0 && c.algorithm == Algorithm::kScaffold)
    r.fail("max_staleness", "must be 0 for scaffold: its members derive their correction from the consensus they "
                            "trained on and the next one, which a push from an older round would break");
  r.finish();
}

void readServerOptimizer(ConfigReader r, CoordinatorConfig& c) {
  std::string name = r.optional<std::string>("name", "plain");
  auto& s = c.server_optimizer;
  try {
    s.kind = parseServerOptimizer(name);
  } catch (const std::invalid_argument& e) {
    r.fail("name", e.what());
  }
  if (s.kind == ServerOptimizerKind::kNesterov) {
    s.lr = 0.7f;
    s.momentum = 0.9f;
  } else if (s.kind == ServerOptimizerKind::kAdam) {
    s.lr = 0.01f;
  }
  s.lr = static_cast<float>(r.optional<double>("lr", s.lr));
  if (!(s.lr > 0)) r.fail("lr", "must be > 0");
  if (s.kind != ServerOptimizerKind::kAdam) {
    s.momentum = static_cast<float>(r.optional<double>("momentum", s.momentum));
    if (s.momentum < 0 || s.momentum >= 1) r.fail("momentum", "must be in [0, 1)");
  } else {
    s.beta1 = static_cast<float>(r.optional<double>("beta1", s.beta1));
    s.beta2 = static_cast<float>(r.optional<double>("beta2", s.beta2));
    s.epsilon = static_cast<float>(r.optional<double>("epsilon", s.epsilon));
    if (s.beta1 < 0 || s.beta1 >= 1) r.fail("beta1", "must be in [0, 1)");
    if (s.beta2 < 0 || s.beta2 >= 1) r.fail("beta2", "must be in [0, 1)");
    if (!(s.epsilon > 0)) r.fail("epsilon", "must be > 0 (adam's tau; 1e-3 is a good start)");
  }
  r.finish();
}

void readAggregation(ConfigReader r, CoordinatorConfig& c) {
  std::string device = r.optional<std::string>("device", "auto");
  if (device == "auto") c.device = AggregatorDevice::kAuto;
  else if (device == "cpu") c.device = AggregatorDevice::kCpu;
  else if (device == "cuda") c.device = AggregatorDevice::kCuda;
  else r.fail("device", "must be auto, cpu or cuda; got \"" + device + "\"");
  c.cpu_threads = r.optional<unsigned>("cpu_threads", 0);
  try {
    c.rule = parseAggregationRule(r.optional<std::string>("rule", "mean"));
  } catch (const std::invalid_argument& e) {
    r.fail("rule", e.what());
  }
  if (r.has("trim_fraction") && c.rule != AggregationRule::kTrimmedMean)
    r.fail("trim_fraction", "applies to rule trimmed_mean only");
  c.trim_fraction = r.optional<double>("trim_fraction", c.trim_fraction);
  if (!(c.trim_fraction >= 0 && c.trim_fraction < 0.5))
    r.fail("trim_fraction", "must lie in [0, 0.5): the share of values dropped at each end of every element");
  r.finish();
}

void readLimits(ConfigReader r, CoordinatorConfig& c) {
  c.handshake_timeout = r.seconds("handshake_timeout_s", c.handshake_timeout);
  c.idle_timeout = r.seconds("idle_timeout_s", c.idle_timeout);
  c.heartbeat_interval = r.seconds("heartbeat_s", c.heartbeat_interval);
  if (c.heartbeat_interval * 2 > c.idle_timeout) r.fail("heartbeat_s", "must be at most half of idle_timeout_s");
  c.chunk_elements = r.optional<uint32_t>("chunk_elements", c.chunk_elements);
  if (c.chunk_elements < 1024 || c.chunk_elements > (1u << 24))
    r.fail("chunk_elements", "must be between 1024 and 16777216");
  c.inflight_chunks = r.optional<size_t>("inflight_chunks", c.inflight_chunks);
  if (c.inflight_chunks == 0 || c.inflight_chunks > 1024) r.fail("inflight_chunks", "must be between 1 and 1024");
  c.max_sessions = r.optional<size_t>("max_sessions", c.max_sessions);
  c.max_handshakes_per_address = r.optional<size_t>("max_handshakes_per_address", c.max_handshakes_per_address);
  if (c.max_handshakes_per_address == 0)
    r.fail("max_handshakes_per_address", "must be at least 1: TLS handshakes in progress from one IP address");
  c.final_linger = r.seconds("final_linger_s", c.final_linger, /*allow_zero=*/true);
  r.finish();
}

}  // namespace

CoordinatorConfig loadCoordinatorConfig(const std::string& path, const std::string& base_dir) {
  nlohmann::json json = common::loadJsonFile(path);
  std::string base = base_dir.empty() ? std::filesystem::absolute(path).parent_path().string() : base_dir;
  ConfigReader r(json, path);
  CoordinatorConfig c;
  c.federation_id = r.optional<std::string>("federation_id", c.federation_id);
  {
    ConfigReader listen = r.child("listen");
    c.listen_host = listen.optional<std::string>("host", c.listen_host);
    int port = listen.optional<int>("port", c.listen_port);
    if (port < 0 || port > 65535) listen.fail("port", "must be 0..65535 (0 picks a free port)");
    c.listen_port = static_cast<uint16_t>(port);
    c.port_file = listen.optionalPath("port_file", base, "");
    listen.finish();
  }
  {
    ConfigReader tls = r.child("tls");
    c.tls.ca_file = tls.path("ca", base);
    c.tls.cert_file = tls.path("cert", base);
    c.tls.key_file = tls.path("key", base);
    c.tls.crl_file = tls.optionalPath("crl", base, "");
    tls.finish();
  }
  c.state_dir = r.path("state_dir", base);
  if (r.has("model")) readModel(r.child("model"), c);
  readAlgorithm(r.child("algorithm"), c);
  readRounds(r.child("rounds"), c);
  if (r.has("server_optimizer")) readServerOptimizer(r.child("server_optimizer"), c);
  if (c.algorithm == Algorithm::kScaffold && c.server_optimizer.kind != ServerOptimizerKind::kPlain) {
    r.child("server_optimizer")
        .fail("name", std::string("must be plain for scaffold, not ") + serverOptimizerName(c.server_optimizer.kind) +
                          ": its members take the mean of everyone's local move from two consecutive consensus "
                          "vectors, which only the plain mean keeps exact (a momentum or Adam server would feed its "
                          "own step back into every member's correction)");
  }
  if (r.has("aggregation")) readAggregation(r.child("aggregation"), c);
  if (r.has("limits")) readLimits(r.child("limits"), c);
  r.finish();
  return c;
}

}  // namespace tapestry::coordinator
