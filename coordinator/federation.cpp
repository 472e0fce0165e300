#include "coordinator/federation.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <iomanip>
#include <sstream>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/line_log.h"
#include "common/log.h"
#include "common/payload.h"
#include "coordinator/best_consensus.h"

namespace tapestry::coordinator {

using common::Errc;
using common::makeError;

namespace {

constexpr size_t kMaxFingerprintBytes = 256;
constexpr size_t kMaxModelSpecBytes = 64 * 1024;

proto::Algorithm toProto(Algorithm a) {
  switch (a) {
    case Algorithm::kFedAvg: return proto::ALGORITHM_FEDAVG;
    case Algorithm::kFedProx: return proto::ALGORITHM_FEDPROX;
    case Algorithm::kEasgd: return proto::ALGORITHM_EASGD;
    case Algorithm::kAdmm: return proto::ALGORITHM_ADMM;
    case Algorithm::kScaffold: return proto::ALGORITHM_SCAFFOLD;
  }
  return proto::ALGORITHM_UNSPECIFIED;
}

Rejection reject(Errc e, std::string message) { return {makeError(e), std::move(message)}; }

// FNV-1a 64 over the sorted "identity\0weight-bits" of a round's
// contributions, never 0 (0 means "not an exact weighted mean").
uint64_t contributorsDigest(std::vector<std::pair<std::string, float>> contributions) {
  std::sort(contributions.begin(), contributions.end());
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<const unsigned char*>(data)[i];
      h *= 1099511628211ull;
    }
  };
  for (const auto& [id, weight] : contributions) {
    mix(id.data(), id.size() + 1);  // with its terminator, so "ab"+"c" differs from "a"+"bc"
    uint32_t bits = 0;
    std::memcpy(&bits, &weight, sizeof bits);
    mix(&bits, sizeof bits);
  }
  return h == 0 ? 1 : h;
}

// No NaN or Inf: the largest |bits| of the vector is below the exponent
// pattern of Inf. One pass the compiler vectorises.
bool allFinite(const float* v, size_t n) {
  uint32_t most = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, v + i, sizeof bits);
    most = std::max(most, bits & 0x7FFFFFFFu);
  }
  return most < 0x7F800000u;
}

bool allFinite(const std::vector<float>& v) { return allFinite(v.data(), v.size()); }

std::string megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

}  // namespace

Federation::Federation(CoordinatorConfig config, FederationState state, std::unique_ptr<Aggregator> aggregator,
                       Clock::time_point now)
    : config_(std::move(config)),
      state_(std::move(state)),
      aggregator_(std::move(aggregator)),
      logic_(config_.rounds, state_.round, state_.has_consensus, now) {
  if (state_.federation_id.empty()) state_.federation_id = config_.federation_id;
  if (!state_.fingerprint.empty() && !pinnedModelAdmits(state_.fingerprint, state_.parameter_count))
    throw std::runtime_error("the federation in " + config_.state_dir + " trains model " + state_.fingerprint + " (" +
                             std::to_string(state_.parameter_count) + " parameters), not the model pinned in the config " +
                             describePinnedModel() + "; fix the config's model section, or start the new model in a "
                             "fresh state_dir");
  resumeCorrectionScale();
  settleBest(config_.state_dir, state_.best_round, state_.best_metric >= 0);
  if (state_.has_consensus) {
    consensus_ = std::make_shared<const std::vector<float>>(std::move(state_.consensus));
    state_.consensus.clear();
    prepareOptimizerState(false);
    aggregator_->reset(consensus_->size());
  }
  rewriteRoundLog();
}

// SCAFFOLD keeps a scale it lowered after diverged rounds across restarts,
// unless the operator has configured another one since.
void Federation::resumeCorrectionScale() {
  if (config_.algorithm != Algorithm::kScaffold) {
    state_.correction_scale = state_.configured_correction_scale = 0;
    return;
  }
  const bool lowered = state_.configured_correction_scale == config_.correction_scale &&
                       state_.correction_scale > 0 && state_.correction_scale < config_.correction_scale;
  if (!lowered) {
    state_.correction_scale = state_.configured_correction_scale = config_.correction_scale;
    return;
  }
  state_.correction_scale = std::max(state_.correction_scale, config_.min_correction_scale);
  LOG_INFO("SCAFFOLD correction scale " << state_.correction_scale << " (lowered from the configured "
                                        << config_.correction_scale
                                        << " after rounds in which members diverged or the consensus collapsed)");
}

void Federation::rewriteRoundLog() const {
  // rounds.jsonl is a convenience copy for progress displays; the checkpoint's
  // log is the record. Rebuild the copy so it never disagrees after a crash:
  // lines from the log's first round on are the log's, older ones (the
  // checkpoint keeps the last kMaxRoundLog rounds) stay as they were, and a
  // torn last line goes.
  std::filesystem::create_directories(config_.state_dir);
  const std::string path = config_.state_dir + "/rounds.jsonl", staged = path + ".tmp";
  const uint64_t first = state_.log.empty() ? state_.round + 1 : state_.log.front().round + 1;
  std::ofstream out(staged, std::ios::trunc);
  {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const auto round = loggedRound(line);
      if (round && *round < first) out << line << "\n";
    }
  }
  for (const RoundRecord& r : state_.log) out << roundJson(r) << "\n";
  out.close();
  std::error_code ec;
  if (out) std::filesystem::rename(staged, path, ec);
  if (!out || ec) {
    LOG_WARN("cannot rewrite " << path << " (" << (ec ? ec.message() : std::string("write failed"))
                               << "); it may lag the checkpoint until the next start");
    std::filesystem::remove(staged, ec);
  }
}

std::string Federation::roundJson(const RoundRecord& r) const {
  std::ostringstream line;
  line << "{\"round\":" << r.round + 1 << ",\"max_rounds\":" << config_.rounds.max_rounds
       << ",\"contributors\":" << r.contributors << ",\"bytes_received\":" << r.bytes_received
       << ",\"seconds\":" << r.seconds << ",\"metric\":" << r.metric << ",\"restarted\":" << r.restarted;
  if (r.late > 0) line << ",\"late\":" << r.late;
  if (r.correction_scale > 0) line << ",\"correction_scale\":" << r.correction_scale;
  if (r.refused) line << ",\"refused\":true";
  if (r.restored >= 0) line << ",\"restored\":" << r.restored;
  line << "}";
  return line.str();
}

bool Federation::pinnedModelAdmits(const std::string& fingerprint, uint64_t parameters) const {
  return (config_.model_fingerprint.empty() || fingerprint == config_.model_fingerprint) &&
         (config_.model_parameters == 0 || parameters == config_.model_parameters);
}

std::string Federation::describePinnedModel() const {
  std::string out;
  if (!config_.model_fingerprint.empty()) out = "model.fingerprint " + config_.model_fingerprint;
  if (config_.model_parameters)
    out += (out.empty() ? "" : ", ") + std::string("model.parameters ") + std::to_string(config_.model_parameters);
  return out;
}

Rejection Federation::admit(const std::string& id, const proto::HelloFromWorker& hello,
                            proto::WelcomeToWorker* welcome) {
  if (hello.protocol_version() != common::kProtocolVersion)
    return reject(Errc::kProtocolVersion, "worker speaks protocol version " + std::to_string(hello.protocol_version()) +
                                              " but this coordinator speaks " + std::to_string(common::kProtocolVersion) +
                                              "; run the same Tapestry release on both sides");
  // The fingerprint and the spec are echoed in errors, logs, the checkpoint
  // and status.json: bounded here, so that none of them carries a megabyte.
  if (hello.model_fingerprint().empty() || hello.model_fingerprint().size() > kMaxFingerprintBytes)
    return reject(Errc::kMalformedFrame, "model_fingerprint of " + std::to_string(hello.model_fingerprint().size()) +
                                             " bytes is out of range (1.." + std::to_string(kMaxFingerprintBytes) +
                                             "); run the same Tapestry release on both sides");
  if (hello.model_spec().size() > kMaxModelSpecBytes)
    return reject(Errc::kMalformedFrame, "model_spec of " + std::to_string(hello.model_spec().size()) +
                                             " bytes is longer than " + std::to_string(kMaxModelSpecBytes) +
                                             "; describe the model in fewer bytes");
  if (hello.parameter_count() == 0 || hello.parameter_count() > common::kMaxPayloadElements)
    return reject(Errc::kMalformedFrame, "parameter_count " + std::to_string(hello.parameter_count()) + " is out of range");
  if (!pinnedModelAdmits(hello.model_fingerprint(), hello.parameter_count()))
    return reject(Errc::kFingerprintMismatch,
                  "model fingerprint " + hello.model_fingerprint() + " (" + hello.model_spec() + ", " +
                      std::to_string(hello.parameter_count()) + " parameters) is not the federation's model, which " +
                      "the operator pinned as " + describePinnedModel() +
                      "; configure the federation's model in the worker config (`tapestry fingerprint --model` "
                      "prints a model's)");
  if (state_.fingerprint.empty()) {
    state_.fingerprint = hello.model_fingerprint();
    state_.model_spec = hello.model_spec();
    state_.parameter_count = hello.parameter_count();
    LOG_INFO("federation model set by " << id << ": " << state_.model_spec << ", " << state_.parameter_count
                                        << " parameters, fingerprint " << state_.fingerprint);
  } else if (hello.model_fingerprint() != state_.fingerprint || hello.parameter_count() != state_.parameter_count) {
    return reject(Errc::kFingerprintMismatch,
                  "model fingerprint " + hello.model_fingerprint() + " (" + hello.model_spec() + ", " +
                      std::to_string(hello.parameter_count()) + " parameters) differs from the federation's " +
                      state_.fingerprint + " (" + state_.model_spec + ", " + std::to_string(state_.parameter_count) +
                      " parameters); configure the federation's model in the worker config");
  }
  if (std::find(state_.members.begin(), state_.members.end(), id) == state_.members.end()) state_.members.push_back(id);
  logic_.workerJoined(id);

  welcome->set_federation_id(state_.federation_id);
  welcome->set_round(logic_.round());
  welcome->set_has_consensus(logic_.hasConsensus());
  welcome->set_already_pushed(logic_.hasContributed(id));
  welcome->set_algorithm(toProto(config_.algorithm));
  welcome->set_rho(config_.rho);
  welcome->set_dual_step(config_.dual_step);
  welcome->set_correction_scale(state_.correction_scale);
  welcome->set_local_steps(config_.local_steps);
  welcome->set_init_seed(config_.init_seed);
  welcome->set_max_rounds(config_.rounds.max_rounds);
  welcome->set_identity(id);
  welcome->set_heartbeat_ms(static_cast<uint32_t>(config_.heartbeat_interval.count()));
  welcome->set_chunk_elements(config_.chunk_elements);
  if (!logic_.hasConsensus()) {
    waiting_.insert(id);
    if (initial_provider_.empty()) {
      initial_provider_ = id;
      welcome->set_send_initial(true);
    }
  }
  return {};
}

std::vector<std::string> Federation::cutOffSlowPushes(Clock::time_point now) {
  const auto cutoff = logic_.pushCutoff();
  if (!cutoff || now < *cutoff) return {};
  std::vector<std::string> ids(logic_.streaming().begin(), logic_.streaming().end());
  for (const std::string& id : ids) depart(id);
  return ids;
}

void Federation::depart(const std::string& id) {
  logic_.workerLeft(id);
  waiting_.erase(id);
  auto it = pushes_.find(id);
  if (it != pushes_.end()) {
    Push& p = it->second;
    if (p.initial) {
      initial_.clear();
      initial_.shrink_to_fit();
    } else {
      size_t chunks = common::chunkCount(p.header.element_count(), p.header.chunk_elements());
      if (p.next_chunk < chunks)
        LOG_WARN(id << " left during its push of round " << logic_.round() << " after " << p.next_chunk << "/" << chunks
                    << " chunks; the rest of its contribution is taken from the current consensus");
      // A delta push's missing chunks are zero deltas: closeRound adds z_r for its whole weight.
      // A robust rule's slot takes z_r for its missing chunks when the round closes.
      if (p.next_chunk < chunks) round_exact_ = false;
      for (size_t c = p.next_chunk; c < chunks && !p.delta && !robust(); ++c) {
        size_t offset = c * p.header.chunk_elements();
        aggregator_->accumulate(offset, consensus_->data() + offset, common::chunkElementCount(p.header, c), p.weight);
      }
      logic_.pushEnded(id);
    }
    pushes_.erase(it);
  }
  if (initial_provider_ == id) initial_provider_.clear();
  if (!logic_.hasConsensus() && logic_.activeCount() == 0 && initial_provider_.empty()) state_.fingerprint.clear();
}

std::optional<uint64_t> Federation::lateBy(const std::string& id) const {
  for (const auto& [who, staleness] : round_late_)
    if (who == id) return staleness;
  return std::nullopt;
}

Rejection Federation::beginPush(const std::string& id, const proto::PushFromWorker& push) {
  if (pushes_.count(id)) return reject(Errc::kMalformedFrame, "a push arrived while the previous one was incomplete");
  if (auto ec = common::validatePayloadHeader(push.payload(), state_.parameter_count))
    return reject(static_cast<Errc>(ec.value()), "push payload rejected: " + ec.message());
  if (push.payload().chunk_elements() != config_.chunk_elements)
    return reject(Errc::kShapeMismatch, "push uses chunks of " + std::to_string(push.payload().chunk_elements()) +
                                            " elements but the federation uses " + std::to_string(config_.chunk_elements));
  if (push.initial()) {
    if (logic_.hasConsensus() || initial_provider_ != id)
      return reject(Errc::kStaleRound, "an initial vector was not requested from this worker");
    try {
      initial_.assign(state_.parameter_count, 0.0f);
    } catch (const std::bad_alloc&) {
      initial_ = {};
      return reject(Errc::kFrameTooLarge, "the coordinator cannot allocate " + megabytes(state_.parameter_count * 4) +
                                              " for an initial vector of " + std::to_string(state_.parameter_count) +
                                              " parameters; run it on a machine with more memory");
    }
    pushes_[id] = Push{push.payload(), 0.0f, 0, true};
    return {};
  }
  const PushVerdict verdict = logic_.checkPush(id, push.round());
  switch (verdict) {
    case PushVerdict::kAccept:
    case PushVerdict::kLate: break;
    case PushVerdict::kStaleRound:
      return reject(Errc::kStaleRound, "push for round " + std::to_string(push.round()) + " but round " +
                                           std::to_string(logic_.round()) + " is open; it was dropped" +
                                           (push.round() < logic_.round() && config_.rounds.max_staleness > 0
                                                ? " (more than rounds.max_staleness " +
                                                      std::to_string(config_.rounds.max_staleness) + " behind)"
                                                : ""));
    case PushVerdict::kAlreadyPushed:
      return reject(Errc::kStaleRound, "this worker already contributed to round " + std::to_string(logic_.round()) +
                                           (lateBy(id) ? " with a late push from an earlier round; this one "
                                                                "was dropped and the next consensus is on its way"
                                                              : ""));
    case PushVerdict::kFinished: return reject(Errc::kFinished, "the federation has finished all its rounds");
    case PushVerdict::kNoConsensus: return reject(Errc::kStaleRound, "no consensus exists yet; wait for it");
  }
  if (push.sample_count() == 0) return reject(Errc::kMalformedFrame, "push with sample_count 0");
  Push p{push.payload(), static_cast<float>(push.sample_count()), 0, false, push.delta()};
  const bool late = verdict == PushVerdict::kLate;
  // Trained from an older consensus: it joins this round with less weight
  // (its delta, for a delta push, applies to z_r), and its rating of that
  // older consensus is no rating of z_r. Recorded once nothing can refuse it.
  const uint64_t staleness = late ? logic_.round() - push.round() : 0;
  if (late) p.weight *= static_cast<float>(std::pow(1.0 + static_cast<double>(staleness), -config_.staleness_exponent));
  if (robust()) {
    try {
      if (!store_) store_ = std::make_unique<ContributionStore>(state_.parameter_count, config_.chunk_elements);
      p.slot = store_->open();
    } catch (const std::bad_alloc&) {
      return reject(Errc::kFrameTooLarge,
                    "the coordinator cannot allocate " + megabytes(state_.parameter_count * 4) + " for contribution " +
                        std::to_string(store_ ? store_->contributions() + 1 : 1) + " of this round (aggregation.rule " +
                        aggregationRuleName(config_.rule) +
                        " keeps every contribution); the operator must give it more memory or use rule mean");
    }
  }
  weight_sum_ += p.weight;
  if (p.delta) delta_weight_ += p.weight;
  if (!late && ratingCounts(id, push.metric(), push.metric_samples())) {
    metric_sum_ += push.metric() * static_cast<double>(push.metric_samples());
    metric_samples_ += push.metric_samples();
    round_raters_.emplace_back(id, static_cast<float>(push.metric_samples()));
  }
  if (push.restarted()) {
    round_exact_ = false;
    round_restarted_.push_back(id);
  }
  if (late) {
    round_late_.emplace_back(id, staleness);
    LOG_INFO(id << "'s push trained on z_" << push.round() << " joins round " << logic_.round() + 1 << ", "
                << staleness << (staleness == 1 ? " round" : " rounds") << " late, with weight x"
                << p.weight / static_cast<float>(push.sample_count()));
  }
  logic_.pushStarted(id);
  pushes_[id] = std::move(p);
  return {};
}

// A member's validation metric of z_r counts towards the federation's when
// it is one: an accuracy in [0, 1] or bits per byte in [0, 1000], from at
// most 2^32 samples. Anything else is a bug or an attempt to steer which
// consensus is kept as the best (and, under SCAFFOLD, to fake a collapse);
// it is ignored, the contribution itself still counts.
bool Federation::ratingCounts(const std::string& id, double metric, uint64_t samples) const {
  if (!std::isfinite(metric) || samples == 0) return false;  // no rating
  const double ceiling = languageModel() ? 1000.0 : 1.0;
  if (metric >= 0 && metric <= ceiling && samples <= (uint64_t{1} << 32)) return true;
  LOG_WARN(id << " rated z_" << logic_.round() << " " << metric << " on " << samples << " samples, outside "
              << (languageModel() ? "[0, 1000] bits per byte" : "[0, 1] accuracy")
              << " or over 2^32 samples; its rating is ignored, its contribution counts");
  return false;
}

size_t Federation::expectedChunkBytes(const std::string& id) const {
  auto it = pushes_.find(id);
  if (it == pushes_.end()) return 0;
  return common::chunkByteCount(it->second.header, it->second.next_chunk);
}

Rejection Federation::pushChunk(const std::string& id, uint8_t* bytes, size_t size, bool intact) {
  auto it = pushes_.find(id);
  if (it == pushes_.end()) return reject(Errc::kMalformedFrame, "a chunk arrived without a push");
  Push& p = it->second;
  size_t index = p.next_chunk;
  size_t offset = index * p.header.chunk_elements();
  size_t count = common::chunkElementCount(p.header, index);
  // Verified in place, then (but for z_0) decoded inside the aggregation
  // kernel: no separate decode pass and no decoded copy of the chunk.
  std::error_code ec = common::verifyChunk(p.header, index, size, intact);
  if (!ec && p.initial) {
    ec = common::decodeChunk(p.header, index, bytes, size, initial_.data() + offset);
  } else if (!ec && robust()) {
    // Decoded into the push's slot; a delta push's values become z_r + delta
    // there. A chunk with NaN/Inf is left unreceived: it counts as z_r.
    float* dst = store_->chunkData(p.slot, index);
    ec = common::decodeChunk(p.header, index, bytes, size, dst);
    if (!ec && p.delta) {
      const float* z = consensus_->data() + offset;
      for (size_t i = 0; i < count; ++i) dst[i] += z[i];
      if (!allFinite(dst, count)) ec = common::makeError(Errc::kNonFinite);
    }
    if (!ec) store_->received(p.slot, index);
    else ++p.next_chunk;
  } else if (!ec) {
    // A chunk with NaN/Inf is folded up to the bad value and completed from
    // z_r (a delta push: zero deltas, so nothing), like a push cut off there;
    // depart() then completes the chunks after it.
    const float* stand_in = p.delta ? nullptr : consensus_->data() + offset;
    ec = aggregator_->accumulateEncoded(offset, static_cast<EncodedDType>(p.header.dtype()), bytes, count, p.weight,
                                        p.header.block_elements(), stand_in);
    if (ec) ++p.next_chunk;
  }
  if (ec) {
    round_exact_ = false;
    return reject(static_cast<Errc>(ec.value()), "chunk " + std::to_string(index) + " rejected: " + ec.message());
  }
  round_bytes_ += size;
  if (++p.next_chunk == common::chunkCount(p.header.element_count(), p.header.chunk_elements())) finishPush(id);
  return {};
}

void Federation::finishPush(const std::string& id) {
  auto it = pushes_.find(id);
  if (it->second.initial) {
    initial_ready_ = true;
  } else {
    logic_.pushEnded(id);
    round_contributions_.emplace_back(id, it->second.weight);
  }
  pushes_.erase(it);
}

std::string Federation::pickInitialProvider() {
  if (logic_.hasConsensus() || !initial_provider_.empty() || waiting_.empty()) return {};
  initial_provider_ = *waiting_.begin();
  return initial_provider_;
}

bool Federation::advance(Clock::time_point now) {
  if (persist_pending_) return false;
  if (!logic_.hasConsensus()) {
    if (!initial_ready_) return false;
    consensus_ = std::make_shared<const std::vector<float>>(std::move(initial_));
    initial_ = {};
    initial_ready_ = false;
    round_bytes_ = 0;  // the z_0 upload is not part of round 0's traffic
    prepareOptimizerState(true);
    aggregator_->reset(consensus_->size());
    logic_.consensusInitialised(now);
    state_.has_consensus = true;
    state_.round = 0;
    state_.contributors_digest = state_.previous_digest = 0;
    waiting_.clear();
    persist();
    LOG_INFO("initial consensus z_0 received from " << initial_provider_ << " (" << consensus_->size()
                                                     << " parameters); round 0 is open");
    return true;
  }
  if (!logic_.shouldClose(now)) return false;
  closeRound(now);
  return true;
}

void Federation::closeRound(Clock::time_point now) {
  // z_{r+1} overwrites z_r in place unless a session is still sending z_r
  // (it holds a reference): then it goes to a copy. Either way the
  // coordinator holds the running sum, the consensus and the optimizer state.
  std::shared_ptr<std::vector<float>> next;
  if (consensus_.use_count() == 1) {
    next = std::const_pointer_cast<std::vector<float>>(consensus_);
    consensus_.reset();
  } else {
    next = std::make_shared<std::vector<float>>(*consensus_);
  }
  double total_weight = weight_sum_;
  const double z_metric = metric_samples_ > 0 ? metric_sum_ / static_cast<double>(metric_samples_) : -1.0;
  Backoff backoff = decideBackoff(z_metric, next->size());
  const bool refused = backoff.refused;
  if (refused) {
    aggregator_->reset(next->size());
    if (store_) store_->clear();
    if (backoff.restored) *next = std::move(*backoff.restored);
  } else if (robust()) {
    // The rule's statistic goes through the server optimizer as a mean of weight 1.
    // A round without contributions (not reachable with a quorum of at least
    // one) keeps z_r rather than stopping the coordinator.
    std::vector<float> combined(*next);
    if (store_ && store_->contributions() > 0)
      store_->combine(config_.rule, config_.trim_fraction, next->data(), combined.data(), config_.cpu_threads);
    if (store_) store_->clear();
    accumulateWhole(combined, 1.0f);
    total_weight = 1.0;
  } else if (delta_weight_ > 0) {
    // Delta pushes summed to sum_k w_k (x_k - z_r); adding z_r once with their
    // total weight makes the sum the same as if they had sent x_k.
    accumulateWhole(*next, static_cast<float>(delta_weight_));
  }
  if (!refused) {
    ServerOptimizerState optimizer;
    optimizer.momentum = state_.momentum.empty() ? nullptr : state_.momentum.data();
    optimizer.second_moment = state_.second_moment.empty() ? nullptr : state_.second_moment.data();
    optimizer.step = logic_.round() + 1;
    aggregator_->finalize(total_weight, config_.server_optimizer, next->data(), optimizer);
  }
  // Finite contributions can still overflow fp32 once weighted and summed
  // (a member sending values near 3e38, or an absurd sample count). Such an
  // update would poison every worker; it is refused and z_r kept.
  bool exact = round_exact_ && !robust() && !refused;
  if (!allFinite(*next) || !allFinite(state_.momentum) || !allFinite(state_.second_moment)) {
    restoreCheckpoint(*next);
    exact = false;
  }
  state_.previous_digest = state_.contributors_digest;
  state_.contributors_digest = exact ? contributorsDigest(round_contributions_) : 0;
  round_contributions_.clear();
  round_raters_.clear();
  round_exact_ = true;
  RoundRecord record;
  record.round = logic_.round();
  record.contributors = logic_.contributorCount();
  record.bytes_received = round_bytes_;
  record.seconds = std::chrono::duration<double>(now - logic_.openedAt()).count();
  record.metric = z_metric;
  record.metric_samples = metric_samples_;
  record.restarted = round_restarted_.size();
  record.late = round_late_.size();
  round_late_.clear();
  record.refused = refused;
  record.restored = backoff.restored ? static_cast<int64_t>(state_.best_round) : -1;
  reportRestarts(record);
  reportCollapse(record, backoff.fell);
  if (refused) lowerCorrectionScale(record, backoff.collapsed);
  record.correction_scale = state_.correction_scale;
  round_restarted_.clear();
  state_.log.push_back(record);
  if (state_.log.size() > kMaxRoundLog) state_.log.erase(state_.log.begin());
  logic_.roundClosed(now);
  state_.round = logic_.round();
  consensus_ = std::move(next);
  weight_sum_ = metric_sum_ = delta_weight_ = 0;
  metric_samples_ = round_bytes_ = 0;
  persist();

  // Workers report accuracy for classifiers and bits per byte for language models.
  const std::string metric =
      record.metric >= 0 ? ", federation val " + describeMetric(record.metric, record.round) : std::string();
  LOG_INFO("round " << record.round + 1 << (config_.rounds.max_rounds ? "/" + std::to_string(config_.rounds.max_rounds) : "")
                    << " closed: " << record.contributors << " contributors, " << megabytes(record.bytes_received)
                    << " received, " << std::fixed << std::setprecision(2) << record.seconds << " s"
                    << metric);
  unlogged_round_ = roundJson(record);
  if (!persist_pending_) appendRoundLog();
}

// SCAFFOLD, while its correction scale can still come down, refuses the
// round's update when its corrections overshot: a member's training diverged
// while corrections were in effect (the others' pushes carry the same
// overshoot), or the consensus z_r collapsed, judged against the best
// consensus rated by the same members; a collapsed z_r gives way to that
// best one. Every algorithm keeps the best consensus as best.ckpt.
Federation::Backoff Federation::decideBackoff(double z_metric, size_t count) {
  Backoff b;
  const bool higher = !languageModel();
  const uint64_t raters = contributorsDigest(round_raters_);
  const bool comparable = state_.best_metric >= 0 && raters == state_.best_raters;
  const bool can_lower = config_.algorithm == Algorithm::kScaffold &&
                         state_.correction_scale > config_.min_correction_scale;
  const bool fell = comparable && collapsedFrom(z_metric, state_.best_metric, higher);
  b.collapsed = can_lower && fell;
  b.fell = fell && !b.collapsed;
  if (b.collapsed) {
    b.restored = loadBest(config_.state_dir, state_.best_round, count, state_.fingerprint);
  } else if (z_metric >= 0 && (!comparable || improvesOn(z_metric, state_.best_metric, higher)) &&
             keepAsBest(config_.state_dir)) {
    // Rated by other members than the best so far: a new yardstick.
    state_.best_metric = z_metric;
    state_.best_round = logic_.round();
    state_.best_raters = raters;
  }
  // Members apply corrections in round r only when z_r's digest repeats z_{r-1}'s.
  const bool corrected = state_.contributors_digest != 0 && state_.contributors_digest == state_.previous_digest;
  b.refused = b.collapsed || (can_lower && corrected && !round_restarted_.empty());
  return b;
}

// Members whose local training diverged pushed z_r back unchanged. A few
// are their own business; all of them mean the federation has stopped
// moving, and only the operator can change that.
void Federation::reportRestarts(const RoundRecord& record) const {
  if (record.restarted == 0) return;
  std::string names;
  for (size_t i = 0; i < round_restarted_.size() && i < 8; ++i) names += (i ? ", " : "") + round_restarted_[i];
  if (round_restarted_.size() > 8) names += ", ...";
  if (record.restarted < record.contributors || record.refused) {
    LOG_WARN("round " << record.round + 1 << ": " << record.restarted << " of " << record.contributors
                      << " contributors restarted from z_" << record.round << " because their training diverged ("
                      << names << ")");
    return;
  }
  LOG_ERROR("round " << record.round + 1 << ": the training of every contributor (" << names
                     << ") diverged from z_" << record.round << ", so z_" << record.round + 1
                     << " is the same consensus and the federation is not moving. Ask the members to lower "
                        "train.lr, or change the algorithm (for scaffold, a smaller algorithm.min_correction_scale); if "
                        "the consensus itself is broken, start the federation again in a fresh state_dir");
}

// A consensus whose validation metric fell below half the best (accuracy)
// or above twice it (bits per byte), as rated by the same members, has
// collapsed; outside SCAFFOLD's back-off nothing undoes that, so the operator
// is told at once and every 10 rounds while it lasts, with the ways out.
void Federation::reportCollapse(const RoundRecord& record, bool fell) {
  if (!fell) {
    if (collapse_warned_ > 0)
      LOG_INFO("round " << record.round + 1 << ": the consensus recovered, " << describeMetric(record.metric, record.round));
    collapse_warned_ = 0;
    return;
  }
  if (collapse_warned_++ % 10 != 0) return;
  LOG_WARN("round " << record.round + 1 << ": the members' validation " << describeMetric(record.metric, record.round)
                    << (collapse_warned_ > 1 ? " is still collapsed (" + std::to_string(collapse_warned_) + " rounds)"
                                             : std::string(" has collapsed"))
                    << " from the best so far, " << describeMetric(state_.best_metric, state_.best_round)
                    << ", kept in " << bestCheckpointPath(config_.state_dir)
                    << ". The federation is diverging: lower the members' train.lr or the server_optimizer's lr and "
                       "momentum; to go on from the best consensus, stop the coordinator, copy best.ckpt over "
                       "coordinator.ckpt and start it again (members follow)");
}

// SCAFFOLD corrections that overshoot make members' training diverge (two
// labels per member is the classic case), and the mean of the others'
// pushes, trained with the same corrections, can kill the model without a
// single NaN. Such a round's update was refused: z_{r+1} is z_r, or the best
// consensus so far when z_r itself collapsed. Every member resets its
// correction (the digest is 0), and the share they apply from z_{r+1} on is
// halved, down to algorithm.min_correction_scale. At the floor, such rounds
// count as they do for every other algorithm.
void Federation::lowerCorrectionScale(const RoundRecord& record, bool collapsed) {
  const double before = state_.correction_scale;
  state_.correction_scale = std::max(before / 2, config_.min_correction_scale);
  std::ostringstream why;
  const uint64_t r = record.round;
  if (collapsed) {
    why << "the members' validation " << describeMetric(record.metric, r) << " collapsed from the best so far, "
        << describeMetric(state_.best_metric, state_.best_round);
    if (record.restored >= 0) why << ", so z_" << record.restored << " is restored as z_" << r + 1;
    else why << ", which cannot be restored, so the round's update is refused and z_" << r << " kept as z_" << r + 1;
  } else {
    why << "members' training diverged while drift corrections were in effect, so the round's update is refused and z_"
        << r << " kept as z_" << r + 1;
  }
  LOG_WARN("round " << r + 1 << " under SCAFFOLD: " << why.str() << "; every member drops its correction and the "
                    << "correction scale is lowered from " << before << " to " << state_.correction_scale
                    << " (algorithm.min_correction_scale " << config_.min_correction_scale << " is the floor)");
}

// "accuracy of z_5 54.25%" for classifiers, "bits per byte of z_5 3.114"
// for language models.
std::string Federation::describeMetric(double metric, uint64_t round) const {
  std::ostringstream out;
  out << (languageModel() ? "bits per byte" : "accuracy") << " of z_" << round << " " << std::fixed;
  if (languageModel()) out << std::setprecision(3) << metric;
  else out << std::setprecision(2) << 100.0 * metric << "%";
  return out.str();
}

// sum += weight * values over the whole vector, chunk by chunk as pushes fold.
void Federation::accumulateWhole(const std::vector<float>& values, float weight) {
  const size_t step = config_.chunk_elements;
  for (size_t offset = 0; offset < values.size(); offset += step)
    aggregator_->accumulate(offset, values.data() + offset, std::min(step, values.size() - offset), weight);
}

bool Federation::languageModel() const { return state_.model_spec.find("\"transformer\"") != std::string::npos; }

// The checkpoint on disk is z_r with its optimizer state: closeRound runs
// only once the last one is durable.
void Federation::restoreCheckpoint(std::vector<float>& consensus) {
  auto saved = loadFederationState(config_.state_dir);
  if (!saved || !saved->has_consensus || saved->round != logic_.round() || saved->consensus.size() != consensus.size())
    throw std::runtime_error("round " + std::to_string(logic_.round() + 1) +
                             " produced a non-finite consensus and the checkpoint of z_" +
                             std::to_string(logic_.round()) + " in " + config_.state_dir + " cannot replace it");
  consensus = std::move(saved->consensus);
  const bool same_optimizer = saved->server_optimizer == state_.server_optimizer;
  if (same_optimizer && saved->momentum.size() == state_.momentum.size()) state_.momentum = std::move(saved->momentum);
  else std::fill(state_.momentum.begin(), state_.momentum.end(), 0.0f);
  if (same_optimizer && saved->second_moment.size() == state_.second_moment.size())
    state_.second_moment = std::move(saved->second_moment);
  else std::fill(state_.second_moment.begin(), state_.second_moment.end(), 0.0f);
  LOG_ERROR("round " << logic_.round() + 1 << ": the weighted mean of " << logic_.contributorCount()
                     << " contributions overflowed to Inf/NaN; the update is refused and z_" << logic_.round()
                     << " is kept as z_" << logic_.round() + 1
                     << ". A member sent values or a sample count far outside a trained model's range; "
                        "see the contributors' logs");
}

// rounds.jsonl never runs ahead of the checkpoint: a round's line is written
// once the state that holds it is durable.
void Federation::appendRoundLog() {
  if (unlogged_round_.empty()) return;
  try {
    common::appendLine(config_.state_dir + "/rounds.jsonl", unlogged_round_);
  } catch (const std::exception& e) {
    // A convenience copy of what the checkpoint holds: the federation goes on.
    LOG_WARN(e.what() << "; round " << logic_.round()
                      << " is missing from it until the coordinator restarts, which rebuilds it from the checkpoint");
  }
  unlogged_round_.clear();
}

void Federation::persisted() {
  persist_pending_ = false;
  appendRoundLog();
}

void Federation::persist() {
  // A best consensus staged in this round becomes best.ckpt once the state
  // that records it is durable.
  if (!defer_persistence_) {
    saveFederationState(state_, *consensus_, state_.momentum, config_.state_dir, state_.second_moment);
    return promoteBest(config_.state_dir);
  }
  // The small state is copied as it stands now, every field of it; the
  // vectors are read in place (see deferPersistence), so they step aside for
  // the copy and return to the same objects the job points at.
  std::vector<float> momentum = std::move(state_.momentum), second_moment = std::move(state_.second_moment);
  FederationState meta = state_;
  state_.momentum = std::move(momentum);
  state_.second_moment = std::move(second_moment);
  persist_pending_ = true;
  persist_job_ = [meta = std::move(meta), consensus = consensus_.get(), momentum = &state_.momentum,
                  second = &state_.second_moment, dir = config_.state_dir] {
    saveFederationState(meta, *consensus, *momentum, dir, *second);
    promoteBest(dir);
  };
}

// Sizes the server optimizer's state for the configured kind. State saved for
// another kind (the operator changed server_optimizer between runs) cannot be
// reinterpreted, so it restarts from zero, as it does for a new federation.
void Federation::prepareOptimizerState(bool fresh) {
  const auto kind = config_.server_optimizer.kind;
  const std::string name = serverOptimizerName(kind);
  const size_t n = consensus_->size();
  if (!fresh && !state_.server_optimizer.empty() && state_.server_optimizer != name) {
    LOG_WARN("the checkpoint's server optimizer state is for " << state_.server_optimizer << " but the config says "
                                                               << name << "; starting " << name << " from zero");
    fresh = true;
  }
  state_.server_optimizer = name;
  const bool needs_momentum = kind != ServerOptimizerKind::kPlain, needs_second = kind == ServerOptimizerKind::kAdam;
  if (!needs_momentum) state_.momentum.clear();
  else if (fresh || state_.momentum.size() != n) state_.momentum.assign(n, 0.0f);
  if (!needs_second) state_.second_moment.clear();
  else if (fresh || state_.second_moment.size() != n) state_.second_moment.assign(n, 0.0f);
}

}  // namespace tapestry::coordinator
