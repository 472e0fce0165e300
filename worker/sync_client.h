#pragma once
// The worker's side of the protocol: one TLS session to the coordinator,
// driven by a background I/O thread so heartbeats and transfers continue
// while the caller trains. The caller sees a blocking event queue (next())
// and fire-and-forget pushes; consensus payloads are read straight into a
// vector and verified chunk by chunk before they are handed over.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/net/tls.h"
#include "common/payload.h"
#include "proto/tapestry.pb.h"

namespace tapestry::worker {

// Rounds the worker accepts: its state counts them in a signed 64-bit field.
constexpr uint64_t kMaxRound = uint64_t{1} << 62;

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7300;
  std::string port_file;  // when set, the port is re-read from it on every connect
  std::string server_name = "localhost";  // checked against the coordinator certificate's SAN
  common::net::TlsSettings tls;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
};

struct ClientEvent {
  // kInterrupted: interrupt() was called; the session, if any, is still open.
  enum class Kind { kConsensus, kInitialRequest, kError, kClosed, kInterrupted };
  Kind kind = Kind::kClosed;
  uint64_t round = 0;
  bool final = false;
  uint64_t contributors_digest = 0;  // kConsensus: see proto::ConsensusToWorker
  double correction_scale = 0;       // kConsensus: see proto::ConsensusToWorker
  std::shared_ptr<std::vector<float>> consensus;  // kConsensus
  // kConsensus: older consensus vectors that were still queued behind this
  // one, (round, vector), oldest first; they were never handed over.
  std::vector<std::pair<uint64_t, std::shared_ptr<std::vector<float>>>> superseded;
  proto::ErrorToWorker error;                     // kError
  std::error_code closed_reason;                  // kClosed
  std::string detail;                             // kClosed: human-readable cause
};

class SyncClient {
 public:
  explicit SyncClient(ClientOptions options);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Connects, authenticates and says Hello. On success fills `welcome`.
  // On failure returns an error and a message; `permanent` tells whether a
  // retry can help (refused certificate or model: no; coordinator down: yes).
  // With a port file that is missing or holds no port, it fails at once
  // ("waiting for the coordinator's port file ...") and connects nowhere.
  std::error_code connect(const proto::HelloFromWorker& hello, proto::WelcomeToWorker* welcome, std::string* message,
                          bool* permanent);
  // Blocks until the next event. After kClosed the client must be reconnected;
  // after interrupt() it returns kInterrupted.
  // A consensus with a newer one queued behind it (in the same session) is
  // not handed over: the newer one carries it in `superseded`. A member that
  // trains slower than the rounds close thus trains on the latest consensus
  // instead of falling further behind with every round.
  ClientEvent next();
  // The next event if one is waiting, without blocking (for a caller that
  // trains while the consensus is on its way).
  std::optional<ClientEvent> poll();
  // Events received and not yet taken, superseded ones included.
  size_t queuedEvents() const;
  // Sends a push of `values` (kept alive until written) in `dtype`.
  void push(proto::PushFromWorker push, std::shared_ptr<const std::vector<float>> values, proto::DType dtype,
            uint32_t chunk_elements);
  // Sends an already encoded payload; `values` (may be null) is kept alive
  // with it, for an FP32 payload that points into them.
  void push(proto::PushFromWorker push, std::shared_ptr<const common::EncodedPayload> payload,
            std::shared_ptr<const std::vector<float>> values);
  // Sends a Goodbye and returns once the session has closed after it (at
  // most the connect timeout later: a push still being written delays it,
  // and one still unwritten then is abandoned).
  void goodbye(const std::string& reason);
  // From any thread (a stop request): a connect() in progress fails at once,
  // and so does every later one; next() returns kInterrupted from now on.
  // An open session stays open, for goodbye().
  void interrupt();
  uint64_t bytesSent() const;
  uint64_t bytesReceived() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapestry::worker
