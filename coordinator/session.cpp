#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "common/net/tls_impl.h"
#include "common/payload.h"
#include "coordinator/session_impl.h"

namespace tapestry::coordinator {

using common::Errc;

namespace {

proto::ErrorCode toProto(const std::error_code& ec) {
  if (ec.category() != common::errorCategory()) return proto::ERROR_INTERNAL;
  switch (static_cast<Errc>(ec.value())) {
    case Errc::kProtocolVersion: return proto::ERROR_PROTOCOL_VERSION;
    case Errc::kFingerprintMismatch: return proto::ERROR_FINGERPRINT_MISMATCH;
    case Errc::kChecksumMismatch: return proto::ERROR_CHECKSUM;
    case Errc::kNonFinite: return proto::ERROR_NON_FINITE;
    case Errc::kStaleRound: return proto::ERROR_STALE_ROUND;
    case Errc::kDuplicateIdentity: return proto::ERROR_DUPLICATE_IDENTITY;
    case Errc::kFrameTooLarge: return proto::ERROR_TOO_LARGE;
    case Errc::kFinished: return proto::ERROR_FINISHED;
    default: return proto::ERROR_MALFORMED;
  }
}

}  // namespace

Session::Session(Server::Impl& server, std::string identity, std::shared_ptr<common::net::Connection> connection)
    : server_(server),
      identity_(std::move(identity)),
      connection_(std::move(connection)),
      hello_timer_(server.ioContext()) {}

void Session::start() {
  connection_->start(this);
  hello_timer_.expires_after(server_.config().handshake_timeout);
  hello_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->admitted_ || !self->connection_->open()) return;
    const auto ms = self->server_.config().handshake_timeout.count();
    self->sendError(proto::ERROR_MALFORMED,
                    "no Hello within " + std::to_string(ms) + " ms of the TLS handshake (limits.handshake_timeout_s)",
                    true);
  });
}

void Session::expectChunks(bool on) { connection_->setChunksOnlyKeepAlive(on); }

void Session::sendMessage(const proto::CoordinatorMessage& message) { connection_->sendControl(message.SerializeAsString()); }

void Session::sendError(proto::ErrorCode code, const std::string& message, bool fatal) {
  LOG_WARN(identity_ << " (" << connection_->remoteAddress() << "): " << message << (fatal ? "; session closed" : ""));
  proto::CoordinatorMessage m;
  auto* e = m.mutable_error();
  e->set_code(code);
  e->set_message(message);
  e->set_fatal(fatal);
  sendMessage(m);
  if (fatal) connection_->closeAfterWrites(common::makeError(Errc::kRejected));
}

void Session::cutOff(const std::string& why) {
  sendError(proto::ERROR_STALE_ROUND, why, true);
}

bool Session::revokedBy(asio::ssl::context& tls) const {
  return connection_->open() && common::net::peerRevoked(tls, connection_->stream());
}

void Session::closeRevoked(const std::string& crl_file) {
  if (!connection_->open()) return;  // closed meanwhile, by another session's close
  LOG_WARN(identity_ << " (" << connection_->remoteAddress() << "): certificate serial "
                     << common::net::peerSerial(connection_->stream()) << " was revoked by the CRL in " << crl_file
                     << "; session closed" << (admitted_ ? "" : " before Hello")
                     << ", and this certificate cannot connect again");
  connection_->close(common::makeError(Errc::kRevoked));
}

void Session::onControl(std::string_view body) {
  proto::WorkerMessage message;
  if (!message.ParseFromArray(body.data(), static_cast<int>(body.size())))
    return sendError(proto::ERROR_MALFORMED, "control frame is not a valid WorkerMessage", true);
  switch (message.body_case()) {
    case proto::WorkerMessage::kHello: return onHello(message.hello());
    case proto::WorkerMessage::kPush: return onPush(message.push());
    case proto::WorkerMessage::kHeartbeat: return;
    case proto::WorkerMessage::kGoodbye:
      LOG_INFO(identity_ << " said goodbye: " << message.goodbye().reason());
      // The final consensus counts as delivered once the member says it
      // holds it on disk, not once it left this process.
      final_acknowledged_ = final_sent_ && message.goodbye().reason() == common::kFinishedGoodbye;
      connection_->close(common::makeError(final_acknowledged_ ? Errc::kFinished : Errc::kClosed));
      return;
    default: return sendError(proto::ERROR_MALFORMED, "empty or unknown WorkerMessage", true);
  }
}

void Session::onHello(const proto::HelloFromWorker& hello) {
  if (admitted_) return sendError(proto::ERROR_MALFORMED, "second Hello on one session", true);
  if (server_.identityActive(identity_))
    return sendError(proto::ERROR_DUPLICATE_IDENTITY,
                     "another session with identity '" + identity_ +
                         "' is active; each worker needs its own certificate (retry once the old session has ended)",
                     true);
  proto::CoordinatorMessage m;
  if (Rejection r = server_.federation().admit(identity_, hello, m.mutable_welcome()))
    return sendError(toProto(r.code), r.message, true);
  admitted_ = true;
  hello_timer_.cancel();
  server_.admitted(shared_from_this());
  // A worker that stops reading may have one consensus and most of a second
  // queued for it; beyond that it is closed rather than held in memory.
  const uint64_t consensus_bytes = server_.federation().state().parameter_count * sizeof(float);
  const uint64_t chunks = common::chunkCount(server_.federation().state().parameter_count, server_.config().chunk_elements);
  connection_->setMaxQueuedBytes(2 * (consensus_bytes + chunks * 16) + (1u << 20));
  const auto& w = m.welcome();
  LOG_INFO(identity_ << " joined from " << connection_->remoteAddress() << " (" << hello.sample_count()
                     << " samples, last round seen " << hello.last_round_seen() << "); round " << w.round()
                     << (w.has_consensus() ? "" : ", no consensus yet") << (w.already_pushed() ? ", already pushed" : ""));
  sendMessage(m);
  if (w.has_consensus()) sendConsensus();
  if (server_.federation().finished()) finish();
}

void Session::onPush(const proto::PushFromWorker& push) {
  if (!admitted_) return sendError(proto::ERROR_MALFORMED, "Push before Hello", true);
  if (discard_chunks_ > 0)
    return sendError(proto::ERROR_MALFORMED, "a push arrived before the chunks of the previous one", true);
  Rejection r = server_.federation().beginPush(identity_, push);
  if (!r) return expectChunks(server_.federation().expectedChunkBytes(identity_) > 0);
  if (r.code == common::makeError(Errc::kStaleRound) &&
      !common::validatePayloadHeader(push.payload(), server_.federation().state().parameter_count)) {
    // Harmless lateness: skip its chunks, tell the worker, send what is current.
    skipChunksOf(push.payload());
    sendError(proto::ERROR_STALE_ROUND, r.message, false);
    // Once per round: repeated stale pushes do not make us send it again.
    if (push.round() < server_.federation().round() && consensus_round_sent_ != server_.federation().round())
      sendConsensus();
    return;
  }
  if (r.code == common::makeError(Errc::kFinished) &&
      !common::validatePayloadHeader(push.payload(), server_.federation().state().parameter_count)) {
    // The push crossed the final consensus on the wire: skip its chunks and
    // let the member take the final (on its way, or sent now) and say goodbye.
    skipChunksOf(push.payload());
    sendError(proto::ERROR_FINISHED, r.message + "; the final consensus is on its way", false);
    finish();
    return;
  }
  sendError(toProto(r.code), r.message, true);
}

void Session::skipChunksOf(const proto::PayloadHeader& payload) {
  discard_chunks_ = common::chunkCount(payload.element_count(), payload.chunk_elements());
  discard_chunk_bytes_ = common::chunkByteCount(payload, 0);
  expectChunks(discard_chunks_ > 0);
}

Session::~Session() {
  if (held_) server_.chunkPool().release(std::exchange(held_, nullptr));
}

// The size a chunk may have now: the next chunk of the push, or at most the
// first chunk's size while skipping a stale push; 0: no chunk is expected
// (before Hello, or between pushes).
size_t Session::acceptableChunkBytes() const {
  if (!admitted_) return 0;
  if (discard_chunks_ > 0) return discard_chunk_bytes_;
  return server_.federation().expectedChunkBytes(identity_);
}

bool Session::deferChunk(size_t length, std::function<void()> resume) {
  // Checked before a pool buffer is sized for it: chunkBuffer refuses it.
  if (held_ || length == 0 || length > acceptableChunkBytes()) return false;
  held_ = server_.chunkPool().acquire(length);
  if (held_) return false;
  server_.chunkPool().waitForRelease(std::move(resume));
  return true;
}

uint8_t* Session::chunkBuffer(size_t length) {
  const size_t acceptable = acceptableChunkBytes();
  const bool fits = discard_chunks_ > 0 ? length > 0 && length <= acceptable : length == acceptable;
  if (acceptable == 0 || !fits || !held_) {
    LOG_WARN(identity_ << (admitted_ ? "" : " (before Hello)") << ": unexpected chunk of " << length
                       << " bytes (expected " << acceptable << "); session closed");
    return nullptr;
  }
  return held_;
}

void Session::onChunk(const uint8_t*, size_t length, bool intact) {
  // The buffer goes back to the pool (waking a waiting session) once the
  // chunk has been folded in, whatever the outcome.
  struct Return {
    Session& s;
    ~Return() {
      if (s.held_) s.server_.chunkPool().release(std::exchange(s.held_, nullptr));
    }
  } give_back{*this};
  if (discard_chunks_ > 0) {
    if (--discard_chunks_ == 0) expectChunks(false);
    return;
  }
  Rejection r = server_.federation().pushChunk(identity_, held_, length, intact);
  if (r) return sendError(toProto(r.code), r.message, true);
  if (server_.federation().expectedChunkBytes(identity_) == 0) expectChunks(false);
  server_.advance();
}

void Session::sendConsensus() {
  if (!connection_->open()) return;
  auto consensus = server_.federation().consensus();
  auto payload = std::make_shared<common::EncodedPayload>(common::EncodedPayload::encode(
      proto::DTYPE_FP32, consensus->data(), consensus->size(), server_.config().chunk_elements));
  consensus_round_sent_ = server_.federation().round();
  proto::CoordinatorMessage m;
  auto* c = m.mutable_consensus();
  c->set_round(server_.federation().round());
  c->set_final(server_.federation().finished());
  c->set_contributors_digest(server_.federation().state().contributors_digest);
  c->set_correction_scale(server_.federation().state().correction_scale);
  *c->mutable_payload() = payload->header();
  sendMessage(m);
  // Keep both the consensus and its encoding alive until the last chunk is out.
  auto keep = std::make_shared<std::pair<decltype(consensus), decltype(payload)>>(consensus, payload);
  const size_t chunks = payload->chunks();
  const bool hold_last = !server_.federation().durable();
  for (size_t i = 0; i < chunks; ++i) {
    auto [data, size] = payload->chunk(i);
    if (i + 1 == chunks && hold_last) last_chunk_ = HeldChunk{data, size, keep};
    else connection_->sendChunk(data, size, keep);
  }
}

void Session::consensusDurable() {
  if (!last_chunk_) return;
  HeldChunk last = std::move(*last_chunk_);
  last_chunk_.reset();
  connection_->sendChunk(last.data, last.size, std::move(last.keepalive));
  if (finish_when_sent_) finish();
}

void Session::requestInitial() {
  proto::CoordinatorMessage m;
  m.mutable_initial_request();
  sendMessage(m);
}

// The final consensus is on its way: the member closes the session with a
// Goodbye once it has saved it. One that never does is let go after the
// idle timeout, the final then not counted as delivered.
void Session::finish() {
  finish_when_sent_ = last_chunk_.has_value();
  if (finish_when_sent_ || final_sent_) return;
  final_sent_ = true;
  hello_timer_.expires_after(server_.config().idle_timeout);
  hello_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->final_acknowledged_) return;
    LOG_WARN(self->identity_ << " did not confirm the final consensus within the idle timeout; closing");
    self->connection_->closeAfterWrites(common::makeError(Errc::kClosed));
  });
}

std::string Session::address() const { return connection_->remoteAddress(); }

void Session::onClosed(std::error_code ec) {
  hello_timer_.cancel();
  if (held_) server_.chunkPool().release(std::exchange(held_, nullptr));
  if (admitted_) LOG_INFO(identity_ << " left: " << ec.message());
  server_.sessionClosed(this, admitted_, final_acknowledged_);
}

}  // namespace tapestry::coordinator
