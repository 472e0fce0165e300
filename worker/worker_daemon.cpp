#include "worker/worker_daemon.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <optional>

#include "common/checkpoint.h"
#include "common/config.h"
#include "common/dir_lock.h"
#include "common/frame.h"
#include "common/line_log.h"
#include "common/log.h"
#include "common/status_file.h"
#include "common/stop_signals.h"
#include "worker/consensus_rule.h"
#include "worker/fatal_error.h"
#include "worker/ml/dataset.h"
#include "worker/sync_client.h"
#include "worker/welcome_check.h"
#include "worker/worker_state.h"

namespace tapestry::worker {

namespace {

std::string algorithmName(proto::Algorithm a) {
  std::string name = proto::Algorithm_Name(a);
  name = name.substr(name.find('_') + 1);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A coordinator that predates these fields sends 0, which means the
// textbook ADMM step and SCAFFOLD's whole correction: 1.
double dualStep(const proto::WelcomeToWorker& welcome) { return welcome.dual_step() > 0 ? welcome.dual_step() : 1.0; }
double correctionScale(const proto::WelcomeToWorker& welcome) {
  return welcome.correction_scale() > 0 ? welcome.correction_scale() : 1.0;
}

// ", dual step G" for ADMM, ", correction scale C" for SCAFFOLD.
std::string describeRuleSettings(const proto::WelcomeToWorker& welcome) {
  std::ostringstream out;
  if (welcome.algorithm() == proto::ALGORITHM_ADMM) out << ", dual step " << dualStep(welcome);
  if (welcome.algorithm() == proto::ALGORITHM_SCAFFOLD) out << ", correction scale " << correctionScale(welcome);
  return out.str();
}

// Seconds as a log line shows them: "0.5", "30", "2.25".
std::string secondsText(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << ms.count() / 1000.0;
  return out.str();
}

}  // namespace

class WorkerDaemon::Impl {
 public:
  explicit Impl(WorkerConfig config)
      : config_(std::move(config)), state_lock_(std::make_unique<common::DirLock>(config_.state_dir, "worker")) {
    // From here on this process owns state_dir/status.json: a start that
    // fails is recorded there too, for `tapestry status`.
    try {
      load();
    } catch (const std::exception& e) {
      const std::string message = describeFatalError(e, writtenDirs());
      writeStatus("failed", message);
      if (message != e.what()) throw std::runtime_error(message);
      throw;
    }
  }

  int run() {
    std::unique_ptr<SyncClient> client;
    try {
      if (stop_.requested()) return stopped(nullptr);
      client = std::make_unique<SyncClient>(config_.client);
      // A stop wakes whatever waits on the coordinator; unhooked before the
      // client goes, whichever way run() ends.
      stop_.setOnStop([c = client.get()] { c->interrupt(); });
      struct Unhook {
        common::StopSignals& stop;
        ~Unhook() { stop.setOnStop({}); }
      } unhook{stop_};
      return serve(*client);
    } catch (const std::exception& e) {
      // A fatal error (the disk holding state_dir is full, ...): the state
      // saved last is intact, and status.json says why this member stopped.
      const std::string message = describeFatalError(e, writtenDirs());
      LOG_ERROR(message);
      writeStatus("failed", message);
      return kExitError;
    }
  }

 private:
  void load() {
    shard_ = loadShard(config_.shard_dir);
    // A shard of the wrong kind (text for "cnn", images for "transformer")
    // is a configuration mistake, told before anything connects.
    try {
      checkDataKind(config_.model, shard_.train, "the training set");
      if (shard_.val.size() > 0) checkDataKind(config_.model, shard_.val, "the validation set");
    } catch (const std::invalid_argument& e) {
      throw common::ConfigError("shard " + config_.shard_dir + ": " + e.what());
    }
    fingerprint_ = modelFingerprint(config_.model);
    parameter_count_ = modelParameterCount(config_.model);
    saved_ = loadWorkerState(config_.state_dir);
    common::removeStaleTemps(finalPath());  // a crash while the final was written
    saved_final_round_ = savedFinalRound();
    if (saved_ && saved_->fingerprint != fingerprint_)
      throw std::runtime_error("state in " + config_.state_dir + " is for model fingerprint " + saved_->fingerprint +
                               " but the config's model has " + fingerprint_ +
                               "; use a fresh state_dir or the original model");
    if (saved_ && !saved_->shard_dir.empty() &&
        (saved_->shard_dir != config_.shard_dir || saved_->shard_samples != shard_.train.size())) {
      LOG_WARN("the state in " << config_.state_dir << " was trained on shard " << saved_->shard_dir << " ("
                               << saved_->shard_samples << " training samples), but data.shard is now "
                               << config_.shard_dir << " (" << shard_.train.size()
                               << "): the parameters are kept and the data is read from the start of a new epoch");
      saved_->trainer.position = 0;
      ++saved_->trainer.epoch;
    }
    if (size_t cut = common::dropTornLastLine(roundLogPath()))
      LOG_WARN("cut an unfinished last line (" << cut << " bytes) off " << roundLogPath()
                                               << ", left by a crash while it was written");
    LOG_INFO("shard " << config_.shard_dir << ": " << shard_.train.size() << " training and " << shard_.val.size()
                      << " validation samples; model " << config_.model.toJson().dump() << ", " << parameter_count_
                      << " parameters, fingerprint " << fingerprint_ << (saved_ ? "; resuming from saved state" : ""));
  }

  // Connects, runs sessions and reconnects until the federation finishes,
  // the coordinator refuses this member, reconnect.give_up_s passes, or a
  // stop is requested.
  int serve(SyncClient& client) {
    auto backoff = config_.backoff_initial;
    bool failing = false;  // since the last session
    std::chrono::steady_clock::time_point failing_since;  // the first failure since then
    for (;;) {
      if (stop_.requested()) return stopped(nullptr);
      writeStatus("connecting", reconnect_reason_);
      proto::HelloFromWorker hello;
      hello.set_protocol_version(common::kProtocolVersion);
      hello.set_model_fingerprint(fingerprint_);
      hello.set_model_spec(config_.model.toJson().dump());
      hello.set_parameter_count(parameter_count_);
      hello.set_sample_count(shard_.train.size());
      hello.set_last_round_seen(lastTrainedRound());
      proto::WelcomeToWorker welcome;
      std::string message;
      bool permanent = false;
      if (auto ec = client.connect(hello, &welcome, &message, &permanent)) {
        if (stop_.requested()) return stopped(nullptr);
        if (permanent) {
          LOG_ERROR("refused by the coordinator: " << message);
          writeStatus("refused", message);
          return kExitRefused;
        }
        if (finishedBefore(message)) return kExitFinished;
        // reconnect.give_up_s is wall time from the first failure, whatever
        // the attempts cost, and the last wait is cut to end on it.
        const auto now = std::chrono::steady_clock::now();
        if (!failing) failing_since = now;
        failing = true;
        const auto failing_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - failing_since);
        const auto give_up = config_.give_up_after;
        if (give_up.count() > 0 && failing_for >= give_up) {
          LOG_ERROR("giving up after " << secondsText(failing_for) << " s of failed attempts (reconnect.give_up_s "
                                       << secondsText(give_up) << "): " << message);
          writeStatus("gave up", "after " + secondsText(failing_for) + " s: " + message);
          return kExitError;
        }
        const auto wait = give_up.count() > 0 ? std::min(backoff, give_up - failing_for) : backoff;
        LOG_WARN(message << "; retrying in " << secondsText(wait) << " s");
        reconnect_reason_ = "the last attempt failed: " + message;
        writeStatus("retrying", message + "; next attempt in " + secondsText(wait) + " s");
        if (stop_.waitFor(wait)) return stopped(nullptr);
        backoff = std::min(backoff * 2, config_.backoff_max);
        continue;
      }
      backoff = config_.backoff_initial;
      failing = false;
      reconnect_reason_.clear();
      if (int code = session(client, welcome); code >= 0) return code;
    }
  }

  // Returns an exit code, or -1 to reconnect.
  int session(SyncClient& client, const proto::WelcomeToWorker& welcome) {
    if (!prepare(welcome)) return kExitError;
    LOG_INFO("joined federation '" << welcome.federation_id() << "' as " << welcome.identity() << " at round "
                                   << welcome.round() << " (" << algorithmName(welcome.algorithm())
                                   << ", rho " << welcome.rho() << describeRuleSettings(welcome) << ", "
                                   << welcome.local_steps() << " local steps)");
    pushed_round_ = welcome.already_pushed() ? static_cast<int64_t>(welcome.round()) : -1;
    if (welcome.send_initial()) pushInitial(client);
    for (;;) {
      if (stop_.requested()) return stopped(&client);
      ClientEvent e = overlapping() ? trainAhead(client, welcome) : waitForEvent(client);
      switch (e.kind) {
        case ClientEvent::Kind::kInterrupted: return stopped(&client);
        case ClientEvent::Kind::kInitialRequest: pushInitial(client); break;
        case ClientEvent::Kind::kError:
          LOG_WARN("coordinator: " << e.error.message());
          break;
        case ClientEvent::Kind::kClosed:
          if (finished_) return kExitFinished;
          LOG_WARN("connection to the coordinator lost (" << e.detail << "); reconnecting");
          reconnect_reason_ = "the connection was lost: " + e.detail;
          dropStepsAhead();
          return -1;
        case ClientEvent::Kind::kConsensus:
          noteSuperseded(e);
          if (e.final) {
            finish(client, e);
            return kExitFinished;
          }
          onConsensus(client, welcome, e);
          break;
      }
    }
  }

  bool prepare(const proto::WelcomeToWorker& welcome) {
    if (auto problem = welcomeProblem(welcome); !problem.empty()) {
      LOG_ERROR("the coordinator's Welcome " << problem << "; this member stops with its state intact");
      writeStatus("stopped", "the coordinator's Welcome " + problem);
      return false;
    }
    if (!trainer_) {
      trainer_ = std::make_unique<Trainer>(config_.model, welcome.init_seed(), shard_.train, config_.train);
      if (saved_) {
        trainer_->restore(saved_->trainer);
        state_ = *saved_;
      }
      state_.fingerprint = fingerprint_;
    }
    // Checked at every session: a coordinator reached later may run another
    // federation, whose consensus must not meet this one's state.
    if (!state_.federation_id.empty() && state_.federation_id != welcome.federation_id()) {
      LOG_ERROR("state in " << config_.state_dir << " belongs to federation '" << state_.federation_id
                            << "' but the coordinator runs '" << welcome.federation_id()
                            << "'; use a fresh state_dir for a new federation");
      writeStatus("stopped", "the coordinator runs federation '" + welcome.federation_id() +
                                 "', not this state_dir's; use a fresh state_dir for a new federation");
      return false;
    }
    state_.federation_id = welcome.federation_id();
    chunk_elements_ = welcome.chunk_elements();
    algorithm_ = welcome.algorithm();
    overlap_ = config_.transfer.overlap && keepsLocalParameters(algorithm_);
    if (config_.transfer.overlap && !overlap_)
      LOG_WARN("transfer.overlap is ignored: " << algorithmName(algorithm_)
                                               << " restarts every round from the consensus, so steps taken while it "
                                                  "is on its way would be thrown away (easgd and admm can overlap)");
    if (config_.transfer.dtype == proto::DTYPE_INT8_BLOCK && chunk_elements_ % config_.transfer.block_elements != 0) {
      LOG_ERROR("transfer.block_elements " << config_.transfer.block_elements
                                           << " does not divide the federation's chunk of " << chunk_elements_
                                           << " elements; pick a divisor such as 256");
      writeStatus("stopped", "transfer.block_elements does not divide the federation's chunk of " +
                                 std::to_string(chunk_elements_) + " elements");
      return false;
    }
    return true;
  }

  void pushInitial(SyncClient& client) {
    auto values = currentParameters();
    proto::PushFromWorker push;
    push.set_round(0);
    push.set_initial(true);
    push.set_sample_count(shard_.train.size());
    push.set_metric(std::numeric_limits<double>::quiet_NaN());
    audit(*values, "push-initial");
    client.push(std::move(push), values, proto::DTYPE_FP32, chunk_elements_);
    LOG_INFO("sent the initial parameters; they become consensus z_0");
    if (lastTrainedRound() >= 0)
      LOG_WARN("the coordinator has no consensus yet, but this member trained up to consensus z_"
               << lastTrainedRound() << " of federation '" << state_.federation_id << "': it has lost its state (or "
               << "runs a new federation under the same federation_id), so this member's parameters start it "
               << "again at round 0; ask the operator whether its state_dir was restored");
  }

  std::shared_ptr<const std::vector<float>> currentParameters() {
    auto values = std::make_shared<std::vector<float>>(parameter_count_);
    trainer_->parameters(values->data());
    return values;
  }

  // Consensus vectors that arrived while this member was still training on
  // an older one: it goes straight to the newest (SyncClient::next). They
  // are released here, not held through the round.
  void noteSuperseded(ClientEvent& e) {
    if (e.superseded.empty()) return;
    for (const auto& [round, z] : e.superseded) audit(*z, "received-round-" + std::to_string(round));
    const uint64_t first = e.superseded.front().first, last = e.superseded.back().first;
    LOG_INFO("consensus z_" << first << (last != first ? "..z_" + std::to_string(last) : std::string())
                            << " arrived while this member was still training; it goes on from the newest, z_"
                            << e.round << (e.final ? " (the final one)" : ""));
    e.superseded.clear();
  }

  void onConsensus(SyncClient& client, const proto::WelcomeToWorker& welcome, const ClientEvent& e) {
    auto round = static_cast<int64_t>(e.round);
    audit(*e.consensus, "received-round-" + std::to_string(round));
    if (state_.trained_round == round) {
      if (pushed_round_ != round)
        send(client, round, state_.metric, state_.metric_samples, encodeOutgoing(*e.consensus));
      return;
    }
    auto start = std::chrono::steady_clock::now();
    writeStatus("training", "round " + std::to_string(round + 1) + ": " + std::to_string(welcome.local_steps()) +
                                " local steps on consensus z_" + std::to_string(round));
    const float* z = e.consensus->data();
    double metric = shard_.val.size() ? trainer_->evaluateParameters(z, shard_.val) : std::nan("");
    // The residual of the last push is now owed to this round's delta.
    // None left (an fp32 push, or error feedback off): none owed.
    state_.residual = std::move(state_.pending_residual);
    state_.pending_residual.clear();
    if (round < state_.trained_round) {
      // The coordinator went back (restored from an older checkpoint): the
      // pushes this member's residual was owed to are gone with it.
      LOG_WARN("round " << round + 1 << ": the coordinator sent consensus z_" << round << " after this member trained "
                        << "on z_" << state_.trained_round << "; it went back to an older state (restored from a "
                        << "backup?). This member follows it and drops what it owed to the lost rounds' pushes");
      state_.residual.clear();
    }
    // ADMM's dual moves by the w that was pushed; a worker that trained on
    // while waiting has moved past it since, and its snapshot is the saved state.
    std::vector<float> w(parameter_count_);
    if (ahead_steps_ > 0) w = state_.trainer.parameters;
    else trainer_->parameters(w.data());
    const int64_t local_steps = welcome.local_steps(), ahead = ahead_steps_;
    const bool scaffold = algorithm_ == proto::ALGORITHM_SCAFFOLD;
    if (scaffold)
      updateScaffold(z, e.contributors_digest, w, local_steps, state_.trained_round == round - 1, state_.scaffold,
                     scaffoldScale(welcome, e, round));
    LocalRound local =
        beginLocalRound(algorithm_, welcome.rho(), z, w, state_.dual, state_.trained_round >= 0, dualStep(welcome));
    if (!keepsLocalParameters(algorithm_)) trainer_->setParameters(w.data());
    const int64_t steps = local_steps - ahead;
    trainer_->setTeacher(z);
    int64_t taken = 0;
    double loss = trainer_->train(steps, local.rho > 0 ? local.target.data() : nullptr, local.rho,
                                  scaffold ? state_.scaffold.correction.data() : nullptr,
                                  [this] { return stop_.requested(); }, &taken);
    if (taken < steps) {
      // Stopped between two steps. Nothing of this round is saved: worker.ckpt
      // keeps the state of the last push (parameters, data position, dual,
      // drift correction, residual), from which the next start trains this
      // round again.
      stop_note_ = "round " + std::to_string(round + 1) + " stopped after " + std::to_string(ahead + taken) + " of " +
                   std::to_string(local_steps) + " local steps, which are dropped";
      return;
    }
    if (local_steps > 0) loss = (loss * double(steps) + ahead_loss_sum_) / double(local_steps);
    state_.trainer = trainer_->state();
    state_.restarted = restartIfDiverged(round, z);
    state_.trained_round = round;
    state_.metric = metric;
    state_.metric_samples = shard_.val.size();
    // Encoded before the save, so the residual this push leaves is saved with
    // it: a restart after the push has counted still owes it to the next round.
    OutgoingPush out = encodeOutgoing(*e.consensus);
    state_.shard_dir = config_.shard_dir;
    state_.shard_samples = shard_.train.size();
    saveWorkerState(state_, config_.state_dir);
    if (stop_.requested()) {
      // A stop does not wait for a push: the next start sends this one, saved.
      stop_note_ = "round " + std::to_string(round + 1) + " trained and saved, its push left to the next start";
      return;
    }
    const double train_s = secondsSince(start);
    send(client, round, metric, state_.metric_samples, std::move(out));
    recordRound(round, local_steps, ahead, train_s, state_.restarted);
    writeStatus("waiting", "pushed round " + std::to_string(round + 1) + "; waiting for consensus z_" +
                               std::to_string(round + 1) + (overlap_ ? ", training on meanwhile" : ""));
    // Training on from here (overlap) pulls towards the anchor of this round;
    // after a restart the dual it was computed with is gone, so towards z.
    if (state_.restarted && !local.target.empty()) local.target.assign(z, z + parameter_count_);
    target_ = std::move(local.target);
    target_rho_ = local.rho;
    ahead_steps_ = 0;
    ahead_loss_sum_ = 0;
    LOG_INFO("round " << round + 1 << ": " << local_steps << " local steps in " << std::fixed << std::setprecision(2)
                      << train_s << " s" << (ahead > 0 ? " (" + std::to_string(ahead) + " of them while waiting)" : "")
                      << ", loss " << std::setprecision(4) << loss << ", consensus val " << describeMetric(metric));
  }

  // The consensus's scale, once the coordinator has lowered it; the
  // Welcome's before. A change is logged once.
  double scaffoldScale(const proto::WelcomeToWorker& welcome, const ClientEvent& e, int64_t round) {
    const double scale = e.correction_scale > 0 ? e.correction_scale : correctionScale(welcome);
    if (scale != correction_scale_ && correction_scale_ > 0)
      LOG_WARN("round " << round + 1 << ": the coordinator set the SCAFFOLD correction scale to " << scale
                        << " (was " << correction_scale_ << ")");
    correction_scale_ = scale;
    return scale;
  }

  // Local training that blew up (NaN/Inf: too high a learning rate, or an
  // algorithm unstable on this member's data) must neither reach the
  // coordinator, which would refuse it, nor end this member's part in the
  // federation: it starts again from the consensus with a fresh optimizer
  // (and ADMM dual). Checks state_.trainer, just taken; true when it restarted.
  bool restartIfDiverged(int64_t round, const float* z) {
    TrainerState& s = state_.trainer;
    bool finite = true;
    for (float v : s.parameters) finite = finite && std::isfinite(v);
    if (finite) return false;
    LOG_WARN("round " << round + 1 << ": local training diverged (parameters not finite); this member restarts from "
                      << "consensus z_" << round << " with a fresh optimizer state"
                      << (state_.dual.empty() ? "" : " and dual")
                      << (state_.scaffold.correction.empty() ? "" : " and drift correction")
                      << "; if it recurs, lower train.lr or ask the operator for another rho or algorithm");
    s.parameters.assign(z, z + parameter_count_);
    std::fill(s.momentum.begin(), s.momentum.end(), 0.0f);
    std::fill(s.second_moment.begin(), s.second_moment.end(), 0.0f);
    s.optimizer_steps = 0;
    trainer_->restore(s);
    std::fill(state_.dual.begin(), state_.dual.end(), 0.0f);
    // SCAFFOLD's correction starts again from 0; the push says so, and the
    // next consensus tells every member to do the same (consensus_rule.h).
    std::fill(state_.scaffold.correction.begin(), state_.scaffold.correction.end(), 0.0f);
    state_.scaffold.digest = 0;
    state_.residual.clear();
    return true;
  }

  // A push is on its way and its consensus has not come yet.
  bool overlapping() const {
    return overlap_ && !target_.empty() && pushed_round_ >= 0 && pushed_round_ == state_.trained_round;
  }

  // Trains towards the last anchor, a step at a time, until an event arrives
  // or a whole round of steps has been taken ahead; then waits for one.
  ClientEvent trainAhead(SyncClient& client, const proto::WelcomeToWorker& welcome) {
    const int64_t limit = welcome.local_steps();
    while (ahead_steps_ < limit) {
      if (stop_.requested()) {
        ClientEvent stop;  // the steps taken ahead go, as after a lost session
        stop.kind = ClientEvent::Kind::kInterrupted;
        return stop;
      }
      if (auto e = client.poll()) return std::move(*e);
      ahead_loss_sum_ += trainer_->train(1, target_rho_ > 0 ? target_.data() : nullptr, target_rho_);
      ++ahead_steps_;
    }
    LOG_INFO("trained a whole round (" << limit << " steps) ahead; waiting for consensus z_" << pushed_round_ + 1);
    return waitForEvent(client);
  }

  ClientEvent waitForEvent(SyncClient& client) {
    const auto start = std::chrono::steady_clock::now();
    ClientEvent e = client.next();
    idle_s_ += secondsSince(start);
    return e;
  }

  // Steps taken ahead were never pushed, so nothing is lost by dropping them:
  // a new session starts from the state that was saved at the last push.
  void dropStepsAhead() {
    if (ahead_steps_ == 0) return;
    trainer_->restore(state_.trainer);
    ahead_steps_ = 0;
    ahead_loss_sum_ = 0;
  }

  // A clean stop (SIGTERM, SIGINT): the coordinator hears goodbye (bounded:
  // a push still on the wire is abandoned, which it handles), status.json
  // and the log say why, exit code 0. Nothing is saved here: worker.ckpt
  // already holds a consistent state, the one of the last round trained.
  int stopped(SyncClient* connected) {
    const int signo = stop_.signal();
    const std::string by = "signal " + std::to_string(signo) + " (" + common::signalName(signo) + ")";
    if (connected) connected->goodbye("stopped by " + by);
    const int64_t trained = lastTrainedRound();
    const std::string resume = trained >= 0 ? "the next start resumes after round " + std::to_string(trained + 1) +
                                                  ", saved in " + config_.state_dir + "/worker.ckpt"
                                            : "nothing was trained yet";
    const std::string detail = "by " + by + (stop_note_.empty() ? "" : "; " + stop_note_) + "; " + resume;
    LOG_INFO("stopped " << detail);
    writeStatus("stopped", detail);
    return kExitStopped;
  }

  // The directories this worker writes, for the advice on a storage error.
  std::vector<std::string> writtenDirs() const { return {config_.state_dir, config_.audit_dir}; }

  // One line per round in state_dir/rounds.jsonl: what the round cost this
  // worker, and how long it sat idle waiting for the coordinator.
  void recordRound(int64_t round, int64_t steps, int64_t ahead, double train_s, bool restarted) {
    const auto now = std::chrono::steady_clock::now();
    const double interval = last_push_ ? std::chrono::duration<double>(now - *last_push_).count() : std::nan("");
    last_push_ = now;
    nlohmann::json line = {{"round", round + 1},       {"local_steps", steps}, {"steps_ahead", ahead},
                           {"train_s", train_s},       {"idle_s", idle_s_},    {"since_last_push_s", nullptr}};
    if (std::isfinite(interval)) line["since_last_push_s"] = interval;
    if (restarted) line["restarted_from_consensus"] = true;
    idle_s_ = 0;
    try {
      common::appendLine(roundLogPath(), line.dump());
    } catch (const std::exception& e) {
      // A record for the member's engineers, not state: training goes on.
      LOG_WARN(e.what() << "; round " << round + 1 << " is missing from it");
    }
    last_round_ = std::move(line);
  }

  // state_dir/status.json at each change of what this member is doing, for
  // `tapestry status` (common/status_file.h). Never fatal.
  void writeStatus(const std::string& what, const std::string& detail = {}) {
    status_file_.write([&] {
      nlohmann::json s = {{"worker", config_.name},
                          {"state", what},
                          {"detail", detail},
                          {"since", common::epochSeconds()},
                          {"pid", static_cast<int64_t>(::getpid())},
                          {"coordinator", config_.client.host + ":" +
                                              (config_.client.port_file.empty() ? std::to_string(config_.client.port)
                                                                                : "(port in " + config_.client.port_file + ")")},
                          {"federation_id", state_.federation_id.empty() && saved_ ? saved_->federation_id : state_.federation_id},
                          {"trained_round", lastTrainedRound()},
                          {"metric_name", metricName(config_.model)}};
      if (!last_round_.is_null()) s["last_round"] = last_round_;
      if (trainer_ && std::isfinite(state_.metric) && state_.trained_round >= 0)
        s["consensus_metric"] = {{"round", state_.trained_round}, {"value", state_.metric}};
      if (finished_ || saved_final_round_ >= 0) s["final"] = finalPath();
      return s;
    });
  }

  std::string roundLogPath() const { return config_.state_dir + "/rounds.jsonl"; }

  // The round of the consensus this member last trained on: the saved
  // state's until the first Welcome has restored it into state_.
  int64_t lastTrainedRound() const { return trainer_ || !saved_ ? state_.trained_round : saved_->trained_round; }

  // "accuracy 86.40%" or "bits_per_byte 2.315".
  std::string describeMetric(double metric) const {
    std::ostringstream out;
    out << metricName(config_.model) << " " << std::fixed;
    if (higherIsBetter(config_.model)) out << std::setprecision(2) << 100.0 * metric << "%";
    else out << std::setprecision(3) << metric;
    return out.str();
  }

  // This round's push from the trained parameters (and dual) against z; the
  // residual it leaves goes to state_.pending_residual.
  OutgoingPush encodeOutgoing(const std::vector<float>& z) {
    std::vector<float> w(parameter_count_);
    trainer_->parameters(w.data());
    OutgoingPush out = encodePush(outgoingVector(algorithm_, w, state_.dual), z, state_.residual, config_.transfer,
                                  chunk_elements_);
    state_.pending_residual = out.residual;
    return out;
  }

  void send(SyncClient& client, int64_t round, double metric, uint64_t metric_samples, OutgoingPush out) {
    proto::PushFromWorker p;
    p.set_round(static_cast<uint64_t>(round));
    p.set_sample_count(shard_.train.size());
    p.set_metric(metric);
    p.set_metric_samples(metric_samples);
    p.set_delta(out.delta);
    p.set_restarted(state_.restarted);
    audit(*out.values, "push-round-" + std::to_string(round), out.delta);
    client.push(std::move(p), out.payload, out.values);
    pushed_round_ = round;
  }

  // delta: `values` is the x - z_r (+ residual) that was encoded, not x.
  void audit(const std::vector<float>& values, const std::string& tag, bool delta = false) {
    if (config_.audit_dir.empty()) return;
    std::filesystem::create_directories(config_.audit_dir);
    common::CheckpointWriter writer;
    writer.setMetadata(nlohmann::json({{"kind", "tapestry-push"}, {"tag", tag}, {"sample_count", shard_.train.size()}, {"delta", delta}})
                           .dump());
    writer.addSection("vector", values.data(), values.size() * sizeof(float));
    writer.commit(config_.audit_dir + "/" + tag + ".ckpt");
  }

  // The round of this federation's final consensus when it is saved here
  // already (the worker stopped after saving it, perhaps before the
  // coordinator heard so); -1 when none. Read once, at start.
  int64_t savedFinalRound() const {
    const std::string path = finalPath();
    if (!saved_ || !std::filesystem::exists(path)) return -1;
    try {
      auto meta = nlohmann::json::parse(common::readCheckpoint(path)->metadata);
      const int64_t round = meta.value("round", int64_t{-1});
      return meta.value("federation_id", "") == saved_->federation_id && round >= saved_->trained_round ? round : -1;
    } catch (const std::exception& e) {
      LOG_WARN("cannot read " << path << " (" << e.what() << "); joining the federation to fetch it again");
      return -1;
    }
  }

  // The coordinator cannot be reached and the federation finished with its
  // final consensus saved here: nothing is left to wait for. A coordinator
  // that is there (a federation extended by more rounds) is joined as usual.
  bool finishedBefore(const std::string& why) {
    if (saved_final_round_ < 0) return false;
    writeStatus("finished", "the coordinator cannot be reached and this member holds its federation's final consensus");
    LOG_INFO("the coordinator cannot be reached (" << why << "), and federation '" << saved_->federation_id
                                                  << "' finished at round " << saved_final_round_
                                                  << " with its final consensus in " << finalPath()
                                                  << ": nothing to do (to join a new federation, use a fresh "
                                                     "state_dir)");
    return true;
  }

  std::string finalPath() const { return config_.state_dir + "/consensus.ckpt"; }

  void finish(SyncClient& client, const ClientEvent& e) {
    finished_ = true;
    common::CheckpointWriter writer;
    writer.setMetadata(nlohmann::json({{"kind", "tapestry-consensus"},
                                       {"federation_id", state_.federation_id},
                                       {"round", e.round},
                                       {"model_spec", config_.model.toJson().dump()}})
                           .dump());
    writer.addSection("consensus", e.consensus->data(), e.consensus->size() * sizeof(float));
    const std::string path = finalPath();
    writer.commit(path);
    client.goodbye(common::kFinishedGoodbye);  // the coordinator counts the final as delivered now
    double metric = shard_.val.size() ? trainer_->evaluateParameters(e.consensus->data(), shard_.val) : std::nan("");
    LOG_INFO("federation finished at round " << e.round << "; final consensus saved to " << path << " (val "
                                             << describeMetric(metric) << ")");
    writeStatus("finished", "final consensus z_" + std::to_string(e.round) + " saved, val " + describeMetric(metric));
  }

  // First, so that a signal while the shard loads is a clean stop as well.
  common::StopSignals stop_{"shutting down at the next safe point (between local steps); the state saved after the "
                            "last round is kept (a second signal ends the worker at once)"};
  std::string stop_note_;  // what a stop cut short, for its log line and status
  WorkerConfig config_;
  std::unique_ptr<common::DirLock> state_lock_;  // before anything in state_dir is read
  Shard shard_;
  std::string fingerprint_;
  size_t parameter_count_ = 0;
  std::optional<WorkerState> saved_;
  int64_t saved_final_round_ = -1;  // savedFinalRound()
  WorkerState state_;
  std::unique_ptr<Trainer> trainer_;
  uint32_t chunk_elements_ = 1u << 20;
  int64_t pushed_round_ = -1;
  proto::Algorithm algorithm_ = proto::ALGORITHM_FEDPROX;
  bool finished_ = false;
  bool overlap_ = false;
  nlohmann::json last_round_;    // the last line of rounds.jsonl this process wrote
  common::StatusFile status_file_{config_.state_dir, "worker"};
  std::string reconnect_reason_;  // why the next connect is not the first
  std::vector<float> target_;  // the penalty anchor of the last round, for steps taken ahead
  double target_rho_ = 0;
  int64_t ahead_steps_ = 0;  // taken since the last push, towards the next round
  double ahead_loss_sum_ = 0;
  double correction_scale_ = 0;  // SCAFFOLD: the scale of the last round; 0 before the first
  double idle_s_ = 0;  // blocked waiting for the coordinator since the last push
  std::optional<std::chrono::steady_clock::time_point> last_push_;
};

WorkerDaemon::WorkerDaemon(WorkerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
WorkerDaemon::~WorkerDaemon() = default;
int WorkerDaemon::run() { return impl_->run(); }

}  // namespace tapestry::worker
