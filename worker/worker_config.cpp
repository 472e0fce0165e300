#include "worker/worker_config.h"

#include <cmath>
#include <filesystem>

#include "common/config.h"

namespace tapestry::worker {

using common::ConfigReader;

WorkerConfig loadWorkerConfig(const std::string& path, const std::string& base_dir) {
  nlohmann::json json = common::loadJsonFile(path);
  std::string base = base_dir.empty() ? std::filesystem::absolute(path).parent_path().string() : base_dir;
  ConfigReader r(json, path);
  WorkerConfig c;
  c.name = r.required<std::string>("name");
  {
    ConfigReader co = r.child("coordinator");
    c.client.host = co.optional<std::string>("host", c.client.host);
    std::string port_file = co.optionalPath("port_file", base, "");
    if (!port_file.empty() && co.has("port"))
      co.fail("port", "cannot be combined with coordinator.port_file; keep one of them");
    if (!port_file.empty()) {
      // Written by a coordinator listening on port 0 (tests, local demos);
      // read again before every connection attempt.
      c.client.port_file = port_file;
    } else {
      int port = co.optional<int>("port", c.client.port);
      if (port <= 0 || port > 65535) co.fail("port", "must be 1..65535");
      c.client.port = static_cast<uint16_t>(port);
    }
    c.client.server_name = co.optional<std::string>("server_name", c.client.host == "127.0.0.1" ? "localhost" : c.client.host);
    c.client.connect_timeout = co.seconds("connect_timeout_s", c.client.connect_timeout);
    c.client.idle_timeout = co.seconds("idle_timeout_s", c.client.idle_timeout);
    co.finish();
  }
  {
    ConfigReader tls = r.child("tls");
    c.client.tls.ca_file = tls.path("ca", base);
    c.client.tls.cert_file = tls.path("cert", base);
    c.client.tls.key_file = tls.path("key", base);
    c.client.tls.crl_file = tls.optionalPath("crl", base, "");
    tls.finish();
  }
  {
    ConfigReader data = r.child("data");
    c.shard_dir = data.path("shard", base);
    data.finish();
  }
  c.state_dir = r.path("state_dir", base);
  c.audit_dir = r.optionalPath("audit_dir", base, "");
  if (r.has("transfer")) {
    ConfigReader t = r.child("transfer");
    try {
      c.transfer.dtype = parseEncoding(t.optional<std::string>("encoding", "fp32"));
    } catch (const std::invalid_argument& e) {
      t.fail("encoding", e.what());
    }
    c.transfer.block_elements = t.optional<uint32_t>("block_elements", c.transfer.block_elements);
    if (c.transfer.block_elements == 0 || c.transfer.block_elements > common::kMaxBlockElements)
      t.fail("block_elements", "must be between 1 and " + std::to_string(common::kMaxBlockElements) +
                                   " and divide the coordinator's chunk_elements (256 is a good choice)");
    c.transfer.error_feedback = t.optional<bool>("error_feedback", c.transfer.error_feedback);
    c.transfer.overlap = t.optional<bool>("overlap", c.transfer.overlap);
    t.finish();
  }
  {
    ConfigReader model = r.child("model");  // marks the key used; ModelSpec::fromJson checks its fields
    (void)model;
    try {
      c.model = ModelSpec::fromJson(json.at("model"));
    } catch (const std::exception& e) {
      r.fail("model", std::string("is invalid: ") + e.what());
    }
  }
  if (r.has("train")) {
    ConfigReader t = r.child("train");
    try {
      c.train.optimizer = parseInnerOptimizer(t.optional<std::string>("optimizer", "sgd"));
    } catch (const std::invalid_argument& e) {
      t.fail("optimizer", e.what());
    }
    const bool adamw = c.train.optimizer == InnerOptimizer::kAdamW;
    if (adamw) c.train.lr = 1e-3;
    c.train.lr = t.optional<double>("lr", c.train.lr);
    if (!(c.train.lr > 0)) t.fail("lr", "must be > 0");
    if (adamw) {
      c.train.beta1 = t.optional<double>("beta1", c.train.beta1);
      c.train.beta2 = t.optional<double>("beta2", c.train.beta2);
      c.train.epsilon = t.optional<double>("epsilon", c.train.epsilon);
      if (c.train.beta1 < 0 || c.train.beta1 >= 1) t.fail("beta1", "must be in [0, 1)");
      if (c.train.beta2 < 0 || c.train.beta2 >= 1) t.fail("beta2", "must be in [0, 1)");
      if (!(c.train.epsilon > 0)) t.fail("epsilon", "must be > 0");
    } else {
      c.train.momentum = t.optional<double>("momentum", c.train.momentum);
      if (c.train.momentum < 0 || c.train.momentum >= 1) t.fail("momentum", "must be in [0, 1)");
    }
    c.train.weight_decay = t.optional<double>("weight_decay", c.train.weight_decay);
    if (c.train.weight_decay < 0) t.fail("weight_decay", "must be >= 0");
    c.train.batch_size = t.optional<int64_t>("batch_size", c.train.batch_size);
    if (c.train.batch_size < 1) t.fail("batch_size", "must be >= 1");
    c.train.logit_adjustment = t.optional<double>("logit_adjustment", c.train.logit_adjustment);
    if (!(c.train.logit_adjustment >= 0) || !std::isfinite(c.train.logit_adjustment))
      t.fail("logit_adjustment", "must be a finite number >= 0 (0: plain cross-entropy, 1: the usual tau)");
    c.train.distill = t.optional<double>("distill", c.train.distill);
    if (!(c.train.distill >= 0) || !std::isfinite(c.train.distill))
      t.fail("distill", "must be a finite number >= 0 (0: off, 1: the usual weight)");
    c.train.distill_temperature = t.optional<double>("distill_temperature", c.train.distill_temperature);
    if (!(c.train.distill_temperature > 0) || !std::isfinite(c.train.distill_temperature))
      t.fail("distill_temperature", "must be a finite number > 0");
    c.train.data_seed = t.optional<uint64_t>("data_seed", c.train.data_seed);
    c.train.threads = t.optional<int>("threads", c.train.threads);
    if (c.train.threads < 0) t.fail("threads", "must be >= 0 (0: LibTorch's default)");
    t.finish();
  }
  if (r.has("reconnect")) {
    ConfigReader rc = r.child("reconnect");
    c.backoff_initial = rc.seconds("initial_s", c.backoff_initial);
    c.backoff_max = rc.seconds("max_s", c.backoff_max);
    c.give_up_after = rc.seconds("give_up_s", c.give_up_after, true);
    rc.finish();
  }
  r.finish();
  return c;
}

}  // namespace tapestry::worker
