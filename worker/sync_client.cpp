#include "worker/sync_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/net/connection_impl.h"
#include "common/net/crl_watch_impl.h"
#include "common/payload.h"
#include "worker/port_file.h"

namespace tapestry::worker {

namespace asio = boost::asio;
using common::Errc;
using common::makeError;

namespace {

struct ConnectResult {
  std::error_code ec;
  std::string message;
  bool permanent = false;
  proto::WelcomeToWorker welcome;
};

ConnectResult failure(std::error_code ec, std::string message, bool permanent) {
  ConnectResult r;
  r.ec = ec;
  r.message = std::move(message);
  r.permanent = permanent;
  return r;
}

bool permanentError(proto::ErrorCode code) {
  return code != proto::ERROR_DUPLICATE_IDENTITY && code != proto::ERROR_INTERNAL;
}

}  // namespace

class SyncClient::Impl : public common::net::FrameHandler {
 public:
  explicit Impl(ClientOptions options)
      : options_(std::move(options)),
        tls_(common::net::makeClientContext(options_.tls)),
        crl_watch_(tls_, options_.tls.crl_file),
        work_(asio::make_work_guard(io_)),
        thread_([this] { io_.run(); }) {}

  ~Impl() override {
    asio::post(io_, [this] {
      if (connection_) connection_->close(makeError(Errc::kClosed));
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  ConnectResult connect(const proto::HelloFromWorker& hello) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.clear();
    }
    expected_elements_ = hello.parameter_count();
    connect_promise_ = std::promise<ConnectResult>();
    auto future = connect_promise_.get_future();
    asio::post(io_, [this, hello] { startConnect(hello); });
    // Every path of an attempt ends in finishConnect; should one ever be
    // lost, the attempt is abandoned after twice the connect timeout and the
    // caller retries, rather than waiting forever.
    if (future.wait_for(2 * options_.connect_timeout) == std::future_status::ready) return future.get();
    std::promise<void> fenced;
    asio::post(io_, [this, &fenced] {
      connect_done_ = true;  // late callbacks of this attempt are ignored
      if (connect_timer_) connect_timer_->cancel();
      if (connection_ && !welcomed_) connection_->close(makeError(Errc::kTimeout));
      fenced.set_value();
    });
    fenced.get_future().wait();
    return failure(makeError(Errc::kTimeout),
                   "no welcome from the coordinator at " + endpointName() + " within " +
                       std::to_string(2 * options_.connect_timeout.count()) + " ms",
                   false);
  }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_.size();
  }

  std::optional<ClientEvent> poll() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (events_.empty()) return std::nullopt;
    return takeFront();
  }

  ClientEvent next() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return !events_.empty() || interrupted_; });
    if (interrupted_) {
      ClientEvent e;
      e.kind = ClientEvent::Kind::kInterrupted;
      return e;
    }
    return takeFront();
  }

  void interrupt() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      interrupted_ = true;
    }
    cv_.notify_all();
    asio::post(io_, [this] {
      if (connect_done_) return;
      finishConnect(failure(makeError(Errc::kClosed), "interrupted", false));  // before close() reports its own
      if (connection_ && !welcomed_) connection_->close(makeError(Errc::kClosed));
    });
  }

  // The front event (mutex held, queue not empty). A consensus is passed
  // over for a newer one queued before the session's end; events in
  // between (non-fatal errors) keep their place.
  ClientEvent takeFront() {
    for (;;) {
      ClientEvent& front = events_.front();
      if (front.kind == ClientEvent::Kind::kConsensus && !front.final) {
        auto next = std::find_if(events_.begin() + 1, events_.end(),
                                 [](const ClientEvent& e) { return e.kind != ClientEvent::Kind::kError; });
        if (next != events_.end() && next->kind == ClientEvent::Kind::kConsensus) {
          // Carried forward, oldest first, to the consensus that supersedes it.
          auto carried = std::move(front.superseded);
          carried.emplace_back(front.round, std::move(front.consensus));
          for (auto& s : next->superseded) carried.push_back(std::move(s));
          next->superseded = std::move(carried);
          events_.pop_front();
          continue;
        }
      }
      ClientEvent e = std::move(front);
      events_.pop_front();
      return e;
    }
  }

  void push(proto::PushFromWorker push, std::shared_ptr<const common::EncodedPayload> payload,
            std::shared_ptr<const std::vector<float>> values) {
    asio::post(io_, [this, push = std::move(push), payload, values]() mutable {
      if (!connection_ || !connection_->open()) return;
      *push.mutable_payload() = payload->header();
      proto::WorkerMessage m;
      *m.mutable_push() = std::move(push);
      connection_->sendControl(m.SerializeAsString());
      auto keep = std::make_shared<std::pair<decltype(values), decltype(payload)>>(values, payload);
      for (size_t i = 0; i < payload->chunks(); ++i) {
        auto [data, size] = payload->chunk(i);
        connection_->sendChunk(data, size, keep);
      }
    });
  }

  void goodbye(const std::string& reason) {
    auto gone = std::make_shared<std::promise<void>>();
    auto done = gone->get_future();
    asio::post(io_, [this, reason, gone] {
      if (!connection_ || !connection_->open()) return gone->set_value();
      proto::WorkerMessage m;
      m.mutable_goodbye()->set_reason(reason);
      connection_->sendControl(m.SerializeAsString());
      connection_->closeAfterWrites(makeError(Errc::kClosed));
      goodbye_gone_ = gone;
    });
    // The process may exit right after: the Goodbye must have left by then.
    done.wait_for(options_.connect_timeout);
  }

  std::atomic<uint64_t> bytes_sent_total_{0};
  std::atomic<uint64_t> bytes_received_total_{0};

 private:
  void startConnect(const proto::HelloFromWorker& hello) {
    hello_ = hello;
    welcomed_ = false;
    connect_done_ = false;  // from here on, every path ends in finishConnect
    if (interruptedNow()) return finishConnect(failure(makeError(Errc::kClosed), "interrupted", false));
    if (!options_.port_file.empty()) {
      PortFileRead read = readPortFile(options_.port_file);
      if (!read.problem.empty())
        return finishConnect(
            failure(makeError(Errc::kClosed), describePortFileWait(options_.port_file, read.problem), false));
      options_.port = read.port;
    }
    crl_watch_.check();
    auto stream = std::make_shared<common::net::TlsStream>(io_, tls_);
    auto resolver = std::make_shared<asio::ip::tcp::resolver>(io_);
    auto timer = std::make_shared<asio::steady_timer>(io_, options_.connect_timeout);
    connect_timer_ = timer;
    timer->async_wait([this, stream](const boost::system::error_code& ec) {
      if (ec || connect_done_) return;
      boost::system::error_code ignored;
      stream->socket().close(ignored);
      finishConnect(failure(makeError(Errc::kTimeout), "no answer from the coordinator within the connect timeout", false));
    });
    resolver->async_resolve(
        options_.host, std::to_string(options_.port),
        [this, stream, resolver, timer](const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type r) {
          if (connect_done_) return;
          if (ec) return finishConnect(failure(ec, "cannot resolve " + options_.host + ": " + ec.message(), false));
          asio::async_connect(stream->socket(), r, [this, stream, timer](const boost::system::error_code& ec,
                                                                               const asio::ip::tcp::endpoint&) {
            if (connect_done_) return;
            if (ec) return finishConnect(failure(ec, "cannot connect to " + endpointName() + ": " + ec.message(), false));
            stream->socket().set_option(asio::ip::tcp::no_delay(true));
            stream->setPeerName(options_.server_name);
            stream->asyncHandshake(common::net::TlsStream::Role::kClient, [this, stream, timer](const boost::system::error_code& ec) {
              if (connect_done_) return;
              // A peer that does not speak TLS (an SSH or HTTP server) is the
              // wrong address, which may yet change: retried, not refused.
              if (ec && common::net::peerIsNotTls(*stream, ec))
                return finishConnect(failure(ec,
                                             "the peer at " + endpointName() + " does not speak TLS (" + ec.message() +
                                                 "); check coordinator.host and coordinator.port",
                                             false));
              // Only a TLS-level refusal (certificate, protocol) is permanent;
              // a reset or EOF mid-handshake is a coordinator going away.
              bool refused = ec.category() == asio::error::get_ssl_category() &&
                             ec != asio::ssl::error::stream_truncated;
              if (ec)
                return finishConnect(failure(ec,
                                      "TLS handshake with " + endpointName() +
                                          " failed: " + common::net::handshakeFailureReason(*stream, ec) +
                                          "; check that tls.ca is the consortium CA and coordinator.server_name matches "
                                          "the coordinator certificate",
                                      refused));
              timer->cancel();
              startSession(std::move(*stream));
            });
          });
        });
  }

  void startSession(common::net::TlsStream&& stream) {
    common::net::ConnectionOptions options;
    options.idle_timeout = options_.idle_timeout;
    proto::WorkerMessage beat;
    beat.mutable_heartbeat();
    options.heartbeat_body = beat.SerializeAsString();
    options.heartbeat_interval = std::chrono::milliseconds(2000);
    connection_ = std::make_shared<common::net::Connection>(std::move(stream), options);
    connection_->start(this);
    proto::WorkerMessage m;
    *m.mutable_hello() = hello_;
    connection_->sendControl(m.SerializeAsString());
  }

  std::string endpointName() const { return options_.host + ":" + std::to_string(options_.port); }

  bool interruptedNow() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return interrupted_;
  }

  // A vector for the next consensus. The caller's previous one comes back
  // here when it lets go of it, so a federation of large models does not
  // allocate (and page-fault through) a fresh vector every round.
  std::shared_ptr<std::vector<float>> consensusBuffer() {
    std::unique_ptr<std::vector<float>> v;
    {
      std::lock_guard<std::mutex> lock(spare_->mutex);
      v = std::move(spare_->vector);
    }
    if (!v || v->size() != expected_elements_) v = std::make_unique<std::vector<float>>(expected_elements_);
    std::weak_ptr<Spare> home = spare_;
    return std::shared_ptr<std::vector<float>>(v.release(), [home](std::vector<float>* p) {
      if (auto spare = home.lock()) {
        std::lock_guard<std::mutex> lock(spare->mutex);
        if (!spare->vector) return spare->vector.reset(p);
      }
      delete p;
    });
  }

  void finishConnect(ConnectResult result) {
    if (connect_done_) return;
    connect_done_ = true;
    if (connect_timer_) connect_timer_->cancel();  // a stale timer must not end the next attempt
    connect_promise_.set_value(std::move(result));
  }

  void emit(ClientEvent e) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }

  void onControl(std::string_view body) override {
    proto::CoordinatorMessage m;
    if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      detail_ = "coordinator sent a message that does not parse";
      return connection_->close(makeError(Errc::kMalformedFrame));
    }
    switch (m.body_case()) {
      case proto::CoordinatorMessage::kWelcome:
        welcomed_ = true;
        finishConnect({{}, {}, false, m.welcome()});
        return;
      case proto::CoordinatorMessage::kConsensus: return beginConsensus(m.consensus());
      case proto::CoordinatorMessage::kHeartbeat: return;
      case proto::CoordinatorMessage::kInitialRequest: {
        ClientEvent e;
        e.kind = ClientEvent::Kind::kInitialRequest;
        return emit(std::move(e));
      }
      case proto::CoordinatorMessage::kError: {
        const auto& err = m.error();
        if (!welcomed_) {
          finishConnect(failure(makeError(Errc::kRejected), err.message(), permanentError(err.code())));
          return;
        }
        ClientEvent e;
        e.kind = ClientEvent::Kind::kError;
        e.error = err;
        return emit(std::move(e));
      }
      default: detail_ = "coordinator sent an empty message"; return connection_->close(makeError(Errc::kMalformedFrame));
    }
  }

  void beginConsensus(const proto::ConsensusToWorker& c) {
    if (auto ec = common::validatePayloadHeader(c.payload(), expected_elements_)) {
      detail_ = "consensus payload rejected: " + ec.message();
      return connection_->close(ec);
    }
    if (!(c.correction_scale() >= 0 && c.correction_scale() <= 1)) {
      detail_ = "the consensus announces a SCAFFOLD correction scale of " + std::to_string(c.correction_scale()) +
                ", outside [0, 1]; the coordinator must run this Tapestry release";
      return connection_->close(makeError(Errc::kMalformedFrame));
    }
    if (c.round() > kMaxRound) {
      detail_ = "the coordinator sent a consensus for round " + std::to_string(c.round()) + ", beyond any federation";
      return connection_->close(makeError(Errc::kMalformedFrame));
    }
    incoming_ = consensusBuffer();
    incoming_header_ = c.payload();
    incoming_round_ = c.round();
    incoming_final_ = c.final();
    incoming_digest_ = c.contributors_digest();
    incoming_correction_scale_ = c.correction_scale();
    next_chunk_ = 0;
  }

  uint8_t* chunkBuffer(size_t length) override {
    if (!incoming_ || length != common::chunkByteCount(incoming_header_, next_chunk_)) {
      detail_ = "unexpected chunk from the coordinator";
      return nullptr;
    }
    if (incoming_header_.dtype() == proto::DTYPE_FP32)
      return reinterpret_cast<uint8_t*>(incoming_->data() + next_chunk_ * incoming_header_.chunk_elements());
    staging_.resize(length);
    return staging_.data();
  }

  void onChunk(const uint8_t* data, size_t length, bool intact) override {
    float* dst = incoming_->data() + next_chunk_ * incoming_header_.chunk_elements();
    std::error_code ec = common::verifyChunk(incoming_header_, next_chunk_, length, intact);
    if (!ec) ec = common::decodeChunk(incoming_header_, next_chunk_, data, length, dst);
    if (ec) {
      detail_ = "consensus chunk " + std::to_string(next_chunk_) + " rejected: " + ec.message();
      return connection_->close(ec);
    }
    if (++next_chunk_ < common::chunkCount(incoming_header_.element_count(), incoming_header_.chunk_elements())) return;
    ClientEvent e;
    e.kind = ClientEvent::Kind::kConsensus;
    e.round = incoming_round_;
    e.final = incoming_final_;
    e.contributors_digest = incoming_digest_;
    e.correction_scale = incoming_correction_scale_;
    e.consensus = std::move(incoming_);
    emit(std::move(e));
  }

  void onClosed(std::error_code ec) override {
    if (auto gone = std::exchange(goodbye_gone_, nullptr)) gone->set_value();
    bytes_sent_total_ += connection_->bytesSent();
    bytes_received_total_ += connection_->bytesReceived();
    std::string detail = !detail_.empty() ? detail_ : connection_->errorDetail();
    bool tls = connection_->tlsError();
    detail_.clear();
    incoming_.reset();
    if (!welcomed_) {
      finishConnect(failure(ec,
                     "coordinator at " + endpointName() + " closed the session before welcoming us" +
                         (detail.empty() ? "" : ": " + detail) +
                         (tls ? "; it does not accept this worker's certificate (is it signed by the consortium CA "
                                "and not revoked?)"
                              : ""),
                     tls));
      return;
    }
    ClientEvent e;
    e.kind = ClientEvent::Kind::kClosed;
    e.closed_reason = ec;
    e.detail = detail.empty() ? ec.message() : detail;
    emit(std::move(e));
  }

  ClientOptions options_;
  asio::io_context io_;
  asio::ssl::context tls_;
  common::net::CrlWatch crl_watch_;  // a re-signed CRL is read before the next connection
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<common::net::Connection> connection_;
  proto::HelloFromWorker hello_;
  std::promise<ConnectResult> connect_promise_;
  std::shared_ptr<asio::steady_timer> connect_timer_;
  std::shared_ptr<std::promise<void>> goodbye_gone_;  // set once a Goodbye's session has closed
  bool connect_done_ = true;
  bool welcomed_ = false;
  uint64_t expected_elements_ = 0;
  std::string detail_;

  struct Spare {
    std::mutex mutex;  // the caller's thread returns vectors
    std::unique_ptr<std::vector<float>> vector;
  };
  std::shared_ptr<Spare> spare_ = std::make_shared<Spare>();
  std::shared_ptr<std::vector<float>> incoming_;
  proto::PayloadHeader incoming_header_;
  uint64_t incoming_round_ = 0;
  bool incoming_final_ = false;
  uint64_t incoming_digest_ = 0;
  double incoming_correction_scale_ = 0;
  size_t next_chunk_ = 0;
  std::vector<uint8_t> staging_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<ClientEvent> events_;
  bool interrupted_ = false;  // interrupt() was called; guarded by mutex_
};

SyncClient::SyncClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
SyncClient::~SyncClient() = default;

std::error_code SyncClient::connect(const proto::HelloFromWorker& hello, proto::WelcomeToWorker* welcome,
                                    std::string* message, bool* permanent) {
  ConnectResult r = impl_->connect(hello);
  if (!r.ec) *welcome = std::move(r.welcome);
  *message = std::move(r.message);
  *permanent = r.permanent;
  return r.ec;
}

ClientEvent SyncClient::next() { return impl_->next(); }
std::optional<ClientEvent> SyncClient::poll() { return impl_->poll(); }
size_t SyncClient::queuedEvents() const { return impl_->queued(); }

void SyncClient::push(proto::PushFromWorker push, std::shared_ptr<const std::vector<float>> values, proto::DType dtype,
                      uint32_t chunk_elements) {
  auto payload = std::make_shared<const common::EncodedPayload>(
      common::EncodedPayload::encode(dtype, values->data(), values->size(), chunk_elements));
  impl_->push(std::move(push), std::move(payload), std::move(values));
}

void SyncClient::push(proto::PushFromWorker push, std::shared_ptr<const common::EncodedPayload> payload,
                      std::shared_ptr<const std::vector<float>> values) {
  impl_->push(std::move(push), std::move(payload), std::move(values));
}

void SyncClient::goodbye(const std::string& reason) { impl_->goodbye(reason); }
void SyncClient::interrupt() { impl_->interrupt(); }
uint64_t SyncClient::bytesSent() const { return impl_->bytes_sent_total_; }
uint64_t SyncClient::bytesReceived() const { return impl_->bytes_received_total_; }

}  // namespace tapestry::worker
