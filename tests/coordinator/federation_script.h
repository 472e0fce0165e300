#pragma once
// Plays an arbitrary byte string against a real Federation as a sequence of
// session events from four members, some of them hostile, with coordinator
// crashes and restarts in between; checks the coordinator's invariants after
// every event. The server's call contract is kept (one session per identity,
// Hello before anything, a chunk only of the size asked for, any rejection
// but a harmless stale push ends the session, deferred persistence), while
// every field a peer controls is taken from the script. Used by the seeded
// random-script test (federation_fuzz_test.cpp) and the libFuzzer target
// (tests/fuzz/).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/frame.h"
#include "common/payload.h"
#include "coordinator/federation.h"

namespace tapestry::coordinator::testing {

class FederationScript {
 public:
  static constexpr size_t kMembers = 4;
  static constexpr uint64_t kParams = 2500;
  static constexpr uint32_t kChunk = 1024;  // chunks of 1024, 1024 and 452 elements

  // Event codes (the low six bits of an event byte; the top two pick the
  // member) and the argument bytes of an honest member.
  static constexpr uint8_t kOpHello = 0, kOpPush = 4, kOpChunk = 16, kOpLeave = 48, kOpTime = 51, kOpPersist = 57,
                           kOpCrash = 61;
  static constexpr uint8_t kHonestHello[] = {2, 2, 10, 0xff};  // kind, parameter count, samples, last round seen
  // fp32 and a true header; the open round, or z_0 when asked for it; values
  static constexpr uint8_t kHonestPush[] = {0x30, 0x23, 1};
  static constexpr uint8_t kHonestChunk = 3;                   // its own bytes, intact

  // `fail` receives a description of a broken invariant; the script stops there.
  FederationScript(const uint8_t* data, size_t size, std::string state_dir, std::function<void(const std::string&)> fail)
      : data_(data), size_(size), dir_(std::move(state_dir)), fail_(std::move(fail)) {}

  struct Stats {
    size_t events = 0;
    size_t consensuses = 0;  // z_0 and every closed round
    size_t restarts = 0;
    uint64_t round = 0;  // at the end
  };

  // Plays the whole script.
  Stats run() {
    const uint8_t a = next(), b = next(), c = next();
    config_ = configFrom(a, b, c);
    slow_disk_ = c & 0x80;
    start();
    while (pos_ < size_ && !failed_) {
      step(next());
      ++stats_.events;
      check();
    }
    stats_.round = federation_ ? federation_->round() : 0;
    return stats_;
  }

 private:
  struct Member {
    bool connected = false;  // a session that has been admitted
    std::vector<float> values;                      // its current push (fp32 payloads point into it)
    std::optional<common::EncodedPayload> payload;  // what that push honestly carries
    size_t sent = 0;                                // chunks of it sent so far
    bool asked_initial = false;                     // the coordinator asked it for z_0
  };

  uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t next64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | next();
    return v;
  }
  std::string id(uint8_t b) const { return std::string(1, static_cast<char>('a' + b % kMembers)); }

  CoordinatorConfig configFrom(uint8_t a, uint8_t b, uint8_t c) const {
    CoordinatorConfig cfg;
    cfg.federation_id = "script";
    cfg.state_dir = dir_;
    cfg.chunk_elements = kChunk;
    cfg.device = AggregatorDevice::kCpu;
    cfg.cpu_threads = 1;
    cfg.rule = static_cast<AggregationRule>(a % 3);
    cfg.trim_fraction = 0.25;
    cfg.server_optimizer.kind = static_cast<ServerOptimizerKind>(a / 3 % 3);
    cfg.server_optimizer.lr = cfg.server_optimizer.kind == ServerOptimizerKind::kPlain ? 1.0f : 0.5f;
    cfg.rounds.min_workers = 1 + b % 3;
    cfg.rounds.quorum = 1 + b / 3 % 3;
    cfg.rounds.deadline = std::chrono::seconds(5);
    cfg.rounds.max_rounds = c & 7;  // 0: unbounded
    return cfg;
  }

  // A (re)started coordinator: everything that was not durable is gone.
  void start() {
    auto state = loadFederationState(dir_);
    if (durable_round_ && (!state || !state->has_consensus || state->round != *durable_round_))
      return fail("restart found " + (state ? "z_" + std::to_string(state->round) : std::string("no checkpoint")) +
                  " but z_" + std::to_string(*durable_round_) + " was durable");
    federation_.reset();
    federation_ = std::make_unique<Federation>(config_, state ? std::move(*state) : FederationState{},
                                               makeAggregator(AggregatorDevice::kCpu, 1), now_);
    federation_->deferPersistence();
    for (auto& m : members_) m = Member{};
    job_ = nullptr;
    last_round_ = federation_->round();
  }

  // An event: the top two bits pick the member, the rest what happens, with
  // weights that let random scripts reach late rounds.
  void step(uint8_t op) {
    const std::string who = id(op >> 6);
    Member& m = members_[op >> 6];
    const uint8_t action = op & 63;
    if (action < kOpPush) return hello(who, m);
    if (action < kOpChunk) return push(who, m);
    if (action < kOpLeave) return chunk(who, m);
    if (action < kOpTime) {  // the session ends: goodbye, timeout, broken TCP
      if (m.connected) leave(who, m);
      return;
    }
    if (action < kOpPersist) {  // time passes; the deadline timer fires
      now_ += std::chrono::milliseconds(250 * (1 + next() % 40));
      return advance();
    }
    if (action < kOpCrash) return persistNow();  // the disk catches up
    if (action == kOpCrash) {
      // The coordinator crashes: before the pending checkpoint is written,
      // or after it is written but before the server learned so.
      if (next() % 2 && job_) runJob();
      ++stats_.restarts;
      return start();
    }
    // a heartbeat
  }

  void hello(const std::string& who, Member& m) {
    if (m.connected) return;  // a second Hello on a session closes it without reaching the federation
    proto::HelloFromWorker h;
    const uint8_t kind = next();
    h.set_protocol_version(kind % 32 == 0 ? common::kProtocolVersion + 1 : common::kProtocolVersion);
    h.set_model_fingerprint(kind % 16 == 1 ? "fp-other" : "fp");
    h.set_model_spec("{}");
    const uint8_t count = next();
    h.set_parameter_count(count % 32 == 0 ? 0 : count % 32 == 1 ? kParams + 1 : kParams);
    h.set_sample_count(next());
    h.set_last_round_seen(static_cast<int8_t>(next()));
    proto::WelcomeToWorker welcome;
    if (federation_->admit(who, h, &welcome)) return;
    m.connected = true;
    m.asked_initial = welcome.send_initial();
  }

  static proto::DType dtypeFrom(uint8_t b) {
    switch (b % 16) {
      case 10: return proto::DTYPE_BF16;
      case 11: return proto::DTYPE_FP16;
      case 12:
      case 13: return proto::DTYPE_INT8_BLOCK;
      case 14:
      case 15: return static_cast<proto::DType>(b);  // unknown, or a real one by chance
      default: return proto::DTYPE_FP32;
    }
  }

  void push(const std::string& who, Member& m) {
    if (!m.connected) return;
    Federation& f = *federation_;
    const uint8_t shape = next(), flags = next(), values = next();
    const proto::DType dtype = dtypeFrom(shape);
    std::vector<float> x(kParams);
    const float scale = values % 32 == 5 ? 1e30f : 1.0f + static_cast<float>(values % 7);
    for (size_t i = 0; i < x.size(); ++i) x[i] = scale * std::sin(static_cast<float>(i * (values + 1)) * 0.01f);
    if (values % 16 == 0) x[values * 7 % kParams] = std::nanf("");
    const bool known = dtype >= proto::DTYPE_FP32 && dtype <= proto::DTYPE_INT8_BLOCK;
    std::optional<common::EncodedPayload> payload;
    proto::PayloadHeader header;
    if (known) {
      const uint32_t block = shape % 16 == 13 ? 128 : 256;
      payload = common::EncodedPayload::encode(dtype, x.data(), x.size(), kChunk, block);
      header = payload->header();
    } else {
      header.set_dtype(dtype);
      header.set_element_count(kParams);
      header.set_chunk_elements(kChunk);
    }
    // Hostile headers: a lie about the size, the chunking or the blocks.
    switch (shape >> 4) {
      case 0: header.set_element_count(next64() % (4 * kParams)); break;
      case 1: header.set_chunk_elements(static_cast<uint32_t>(next64())); break;
      case 2: header.set_block_elements(next() % 3 == 0 ? 0 : 1000); break;
      default: break;
    }
    proto::PushFromWorker p;
    const uint64_t round = f.round();
    switch (flags % 16) {
      case 0: p.set_round(round + 1); break;
      case 1: p.set_round(round == 0 ? 0 : round - 1); break;
      case 2: p.set_round(next64()); break;
      default: p.set_round(round); break;
    }
    p.set_sample_count(flags >> 4 == 0 ? 0 : flags >> 4 == 1 ? ~0ull : 1 + flags % 50);
    p.set_metric(flags % 5 == 0 ? std::nan("") : flags % 5 == 1 ? HUGE_VAL : 0.5);
    p.set_metric_samples(flags % 3 ? 10 : ~0ull);
    // An honest worker sends z_0 when asked for it; a hostile one when it likes.
    p.set_initial(flags >> 6 == 3 || (flags >> 6 < 2 && m.asked_initial && !f.hasConsensus()));
    p.set_delta(flags >> 6 == 2);
    *p.mutable_payload() = header;
    Rejection r = f.beginPush(who, p);
    if (!r) {
      m.values = std::move(x);
      m.payload = std::move(payload);
      m.sent = 0;
      if (p.initial()) m.asked_initial = false;
      return;
    }
    // A stale push with a valid header is skipped by the session; anything else ends it.
    if (r.code == common::makeError(common::Errc::kStaleRound) && !common::validatePayloadHeader(header, f.state().parameter_count))
      return;
    leave(who, m);
  }

  void chunk(const std::string& who, Member& m) {
    if (!m.connected) return;
    Federation& f = *federation_;
    const size_t size = f.expectedChunkBytes(who);
    if (size == 0) return;  // the session rejects a chunk nobody asked for before the federation sees it
    if (size > common::kMaxChunkBytes) return fail("expectedChunkBytes " + std::to_string(size) + " beyond the frame limit");
    const uint8_t how = next();
    std::vector<float> buffer((size + 3) / 4 + 1);
    auto* bytes = reinterpret_cast<uint8_t*>(buffer.data());
    // The next chunk of what the header announced, when the header told the truth about its size.
    bool honest = false;
    if (m.payload && how % 8 != 0 && m.sent < m.payload->chunks() && m.payload->chunk(m.sent).second == size) {
      std::memcpy(bytes, m.payload->chunk(m.sent).first, size);
      honest = true;
    }
    if (!honest)
      for (size_t i = 0; i < size; ++i) bytes[i] = next();
    if (how % 16 == 1) bytes[how * 31 % size] ^= 0x40;  // damaged in transit: the checksum catches it
    const bool intact = how % 16 != 1 && how % 32 != 2;
    Rejection r = f.pushChunk(who, bytes, size, intact);
    ++m.sent;
    if (r) return leave(who, m);
    if (f.expectedChunkBytes(who) == 0) m.payload.reset();
    advance();
  }

  void leave(const std::string& who, Member& m) {
    m = Member{};
    federation_->depart(who);
    const std::string provider = federation_->pickInitialProvider();
    if (!provider.empty()) members_[static_cast<size_t>(provider[0] - 'a')].asked_initial = true;
    if (!job_) advance();
  }

  void advance() {
    while (!job_ && federation_->advance(now_)) {
      job_ = federation_->takePersistJob();
      if (!job_) return fail("advance() produced a consensus without a checkpoint job");
      if (federation_->durable()) return fail("a new consensus counts as durable before its checkpoint is written");
      ++stats_.consensuses;
      if (!slow_disk_) persistNow();  // a slow disk: events keep arriving until a persist event
    }
  }

  void runJob() {
    auto job = std::exchange(job_, nullptr);
    job();
    durable_round_ = federation_->round();
  }

  void persistNow() {
    if (!job_) return;
    runJob();
    federation_->persisted();
    advance();
  }

  void check() {
    if (failed_ || !federation_) return;
    const Federation& f = *federation_;
    if (f.round() < last_round_)
      return fail("round went back from " + std::to_string(last_round_) + " to " + std::to_string(f.round()));
    last_round_ = f.round();
    if (f.hasConsensus()) {
      auto z = f.consensus();
      if (!z || z->size() != f.state().parameter_count) return fail("consensus has the wrong size");
      for (float v : *z)
        if (!std::isfinite(v)) return fail("consensus z_" + std::to_string(f.round()) + " holds NaN/Inf");
    }
    for (size_t k = 0; k < kMembers; ++k)
      if (!members_[k].connected && f.expectedChunkBytes(id(static_cast<uint8_t>(k))) != 0)
        return fail("member " + id(static_cast<uint8_t>(k)) + " left but chunks are still expected from it");
  }

  void fail(const std::string& what) {
    failed_ = true;
    fail_(what + " (after byte " + std::to_string(pos_) + " of " + std::to_string(size_) + ")");
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string dir_;
  std::function<void(const std::string&)> fail_;
  bool failed_ = false;
  bool slow_disk_ = false;
  Stats stats_;
  CoordinatorConfig config_;
  std::unique_ptr<Federation> federation_;
  Member members_[kMembers];
  std::function<void()> job_;
  std::optional<uint64_t> durable_round_;
  uint64_t last_round_ = 0;
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
};

}  // namespace tapestry::coordinator::testing
