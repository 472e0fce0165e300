#include <boost/asio/post.hpp>

#include <array>
#include <utility>

#include "common/error.h"
#include "common/net/connection_impl.h"

namespace tapestry::common::net {

Connection::Connection(TlsStream&& stream, ConnectionOptions options)
    : stream_(std::move(stream)),
      options_(std::move(options)),
      idle_timer_(stream_.executor()),
      heartbeat_timer_(stream_.executor()) {
  boost::system::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  last_send_ = std::chrono::steady_clock::now();
}

Connection::~Connection() = default;

void Connection::start(FrameHandler* handler) {
  handler_ = handler;
  armIdleTimer();
  armHeartbeat();
  readHeader();
}

void Connection::armIdleTimer() {
  idle_timer_.expires_after(options_.idle_timeout);
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    self->fail({}, makeError(Errc::kTimeout));
  });
}

void Connection::armHeartbeat() {
  if (options_.heartbeat_body.empty()) return;
  heartbeat_timer_.expires_after(options_.heartbeat_interval);
  heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    auto quiet = std::chrono::steady_clock::now() - self->last_send_;
    if (quiet >= self->options_.heartbeat_interval / 2 && self->out_.empty())
      self->sendControl(self->options_.heartbeat_body);
    self->armHeartbeat();
  });
}

void Connection::readHeader() {
  stream_.asyncRead(asio::buffer(in_header_, kFrameHeaderSize),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (self->closed_ || self->close_after_writes_) return;
                     if (ec) return self->fail(ec, makeError(Errc::kClosed));
                     self->bytes_received_ += kFrameHeaderSize;
                     if (auto err = decodeFrameHeader(self->in_header_, &self->current_)) return self->fail({}, err);
                     self->readBody();
                   });
}

void Connection::readBody() {
  if (closed_ || close_after_writes_) return;
  asio::mutable_buffer target;
  if (current_.type == FrameType::kChunk) {
    std::weak_ptr<Connection> weak = weak_from_this();
    auto resume = [weak] {
      if (auto self = weak.lock()) asio::post(self->stream_.executor(), [self] { self->readBody(); });
    };
    if (handler_->deferChunk(current_.length, std::move(resume))) {
      // Waiting for a buffer is our doing, not the peer's: the idle clock
      // starts again when the read resumes.
      idle_paused_ = true;
      idle_timer_.cancel();
      return;
    }
    if (std::exchange(idle_paused_, false)) armIdleTimer();
  }
  if (current_.type == FrameType::kControl) {
    control_in_.resize(current_.length);
    target = asio::buffer(control_in_.data(), control_in_.size());
  } else {
    chunk_in_ = handler_->chunkBuffer(current_.length);
    if (!chunk_in_) return fail({}, makeError(Errc::kMalformedFrame));
    target = asio::buffer(chunk_in_, current_.length);
  }
  in_crc_ = 0;
  stream_.asyncRead(
      target,
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        if (self->closed_) return;
        if (ec) return self->fail(ec, makeError(Errc::kClosed));
        self->in_length_ = n;
        self->readTrailer();
      },
      &in_crc_);
}

void Connection::readTrailer() {
  stream_.asyncRead(asio::buffer(in_trailer_, kFrameTrailerSize),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      if (self->closed_) return;
                      if (ec) return self->fail(ec, makeError(Errc::kClosed));
                      self->bytes_received_ += self->in_length_ + kFrameTrailerSize;
                      // A closing session hears nothing more from its peer.
                      if (self->close_after_writes_) return;
                      if (self->current_.type == FrameType::kChunk || !self->chunks_only_keepalive_)
                        self->armIdleTimer();
                      const bool intact = decodeFrameTrailer(self->in_trailer_) == self->in_crc_;
                      if (self->current_.type == FrameType::kChunk) {
                        self->handler_->onChunk(self->chunk_in_, self->in_length_, intact);
                      } else {
                        if (!intact) return self->fail({}, makeError(Errc::kChecksumMismatch));
                        self->handler_->onControl(self->control_in_);
                      }
                      if (!self->closed_) self->readHeader();
                    });
}

void Connection::sendControl(std::string body) {
  // Our own messages are small by construction; one that is not would be
  // refused by the peer, so fail here where the cause is visible.
  if (body.size() > kMaxControlBytes) return closeFromSend(makeError(Errc::kFrameTooLarge));
  OutFrame frame;
  frame.owned = std::move(body);
  frame.length = frame.owned.size();
  enqueue(std::move(frame));
}

void Connection::sendChunk(const uint8_t* data, size_t length, std::shared_ptr<const void> keepalive) {
  OutFrame frame;
  frame.type = FrameType::kChunk;
  frame.data = data;
  frame.length = length;
  frame.keepalive = std::move(keepalive);
  enqueue(std::move(frame));
}

void Connection::enqueue(OutFrame&& frame) {
  if (closed_ || close_after_writes_) return;
  const size_t bytes = frame.length + kFrameHeaderSize + kFrameTrailerSize;
  if (options_.max_queued_bytes != 0 && queued_bytes_ + bytes > options_.max_queued_bytes)
    return closeFromSend(makeError(Errc::kNotReading));
  queued_bytes_ += bytes;
  out_.push_back(std::move(frame));
  if (!writing_) writeNext();
}

void Connection::writeNext() {
  if (out_.empty()) {
    writing_ = false;
    if (close_after_writes_) close(close_reason_);
    return;
  }
  writing_ = true;
  OutFrame& f = out_.front();
  const void* body = f.type == FrameType::kControl ? static_cast<const void*>(f.owned.data()) : f.data;
  encodeFrameHeader({f.type, static_cast<uint32_t>(f.length)}, f.header);
  std::array<asio::const_buffer, 3> buffers{asio::buffer(f.header, kFrameHeaderSize), asio::buffer(body, f.length),
                                            asio::buffer(f.trailer, kFrameTrailerSize)};
  // The trailer's CRC32C is taken record by record as the body is encrypted.
  stream_.asyncWrite(
      buffers.data(), buffers.size(),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        if (self->closed_) return;
        if (ec) return self->fail(ec, makeError(Errc::kClosed));
        self->bytes_sent_ += n;
        self->queued_bytes_ -= n;
        self->last_send_ = std::chrono::steady_clock::now();
        self->out_.pop_front();
        if (self->close_after_writes_ && !self->out_.empty()) self->armDrainTimer();
        self->writeNext();
      },
      TlsStream::Checksum{1, f.trailer});
}

void Connection::closeAfterWrites(std::error_code reason) {
  if (closed_) return;
  close_after_writes_ = true;
  close_reason_ = reason;
  if (!writing_) return close(reason);
  idle_paused_ = false;
  armDrainTimer();
}

// While closing after writes, the peer's frames no longer re-arm the idle
// timer; each frame it takes does. A peer that takes nothing for one idle
// timeout is closed at once.
void Connection::armDrainTimer() {
  idle_timer_.expires_after(options_.idle_timeout);
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    self->close_after_writes_ = false;  // nothing more will be written: no half-close
    self->close(self->close_reason_);
  });
}

void Connection::fail(const boost::system::error_code& ec, std::error_code mapped) {
  // A peer that vanishes mid-record surfaces as stream_truncated or eof:
  // both mean "closed by peer" here; TLS alerts are kept for the message.
  if (ec && ec != asio::error::eof && ec != asio::ssl::error::stream_truncated) {
    error_detail_ = ec.message();
    tls_error_ = ec.category() == asio::error::get_ssl_category();
  }
  close(mapped);
}

void Connection::close(std::error_code reason) {
  if (!closed_) shutDown(reason);
  notifyClosed();  // at once; or now, for a close from a send not yet told
}

// A send that ends the session (its peer does not read, or the frame is
// ours and too large) must not call back into the handler from inside the
// send: the caller may be walking a list of sessions that onClosed changes.
// The transport closes now; the handler hears of it once the call returned.
void Connection::closeFromSend(std::error_code reason) {
  if (closed_) return;
  shutDown(reason);
  asio::post(stream_.executor(), [self = shared_from_this()] { self->notifyClosed(); });
}

void Connection::notifyClosed() {
  FrameHandler* handler = std::exchange(handler_, nullptr);
  if (handler) handler->onClosed(closed_reason_);
}

void Connection::shutDown(std::error_code reason) {
  closed_ = true;
  closed_reason_ = reason;
  // After abort() the stream never again reads into the handler's chunk
  // buffer (which onClosed may free) nor encrypts from a keepalive that
  // out_.clear() frees.
  stream_.abort();
  idle_timer_.cancel();
  heartbeat_timer_.cancel();
  boost::system::error_code ignored;
  if (close_after_writes_) {
    // Let the peer read what we last wrote (a typed error) before the socket
    // goes: half-close now, close fully a moment later.
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    idle_timer_.expires_after(std::chrono::milliseconds(500));
    idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code&) {
      boost::system::error_code e;
      self->stream_.socket().close(e);
    });
  } else {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }
  out_.clear();
}

}  // namespace tapestry::common::net
