#pragma once
// A framed, mutually authenticated TLS session driven by one io_context
// thread (so it needs no strand). It reads frames forever and hands them to a
// FrameHandler; writes are queued and gathered. Every read is guarded by the
// idle timeout, and a heartbeat goes out when nothing else has been sent for a
// while. Time a read spends paused for a receive buffer (deferChunk) does not
// count as idle. A peer that leaves more than max_queued_bytes unread, or
// does not take what is left after closeAfterWrites() within the idle
// timeout, is closed. The first error closes the session and reaches the handler once, in
// onClosed(); after that the handler is never called again, so its owner may
// destroy it there. A close caused by a send (sendControl, sendChunk) is told
// from the io_context once that call has returned, never from inside it; a
// close() before then tells it at once.
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "common/frame.h"
#include "common/net/tls_impl.h"

namespace tapestry::common::net {

class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  virtual void onControl(std::string_view body) = 0;
  // A chunk frame of `length` bytes is next: where should it be read to? The
  // buffer must hold `length` bytes until onChunk(). nullptr rejects it and
  // closes the session with kMalformedFrame.
  virtual uint8_t* chunkBuffer(size_t length) = 0;
  // Asked before chunkBuffer: true pauses reading this connection (its peer
  // is then held back by TCP) until the handler calls `resume` on the io
  // thread, which asks again. For receivers with a bounded buffer pool.
  virtual bool deferChunk(size_t length, std::function<void()> resume) {
    (void)length;
    (void)resume;
    return false;
  }
  // The chunk's bytes, and whether their CRC32C matched the frame's trailer.
  // A damaged chunk is the handler's to answer (with a typed error); a
  // damaged control frame closes the session here with kChecksumMismatch.
  virtual void onChunk(const uint8_t* data, size_t length, bool intact) = 0;
  virtual void onClosed(std::error_code ec) = 0;
};

struct ConnectionOptions {
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds heartbeat_interval{5000};
  std::string heartbeat_body;  // serialized control message; empty: none
  size_t max_queued_bytes = 0;  // 0: no limit (see setMaxQueuedBytes)
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(TlsStream&& stream, ConnectionOptions options);
  ~Connection();

  void start(FrameHandler* handler);
  void sendControl(std::string body);
  // `data` must stay valid while `keepalive` is held.
  void sendChunk(const uint8_t* data, size_t length, std::shared_ptr<const void> keepalive);
  // Closes once everything queued so far has been written; from now on no
  // frame reaches the handler, and a peer that does not read what is left
  // within the idle timeout is closed without waiting further.
  void closeAfterWrites(std::error_code reason);
  // A send that would leave more than `bytes` queued (written to neither the
  // socket nor the kernel) closes the session with kNotReading instead: a
  // peer that stops reading cannot make us hold ever more. 0: no limit.
  void setMaxQueuedBytes(size_t bytes) { options_.max_queued_bytes = bytes; }
  // While on, only chunk frames count as activity for the idle timeout:
  // control frames (heartbeats) no longer keep the session alive. For a
  // receiver that expects a stream of chunks and must not be held up by a
  // peer that stops sending them but keeps beating.
  void setChunksOnlyKeepAlive(bool on) { chunks_only_keepalive_ = on; }
  void close(std::error_code reason);

  bool open() const { return !closed_; }
  size_t queuedBytes() const { return queued_bytes_; }
  uint64_t bytesReceived() const { return bytes_received_; }
  uint64_t bytesSent() const { return bytes_sent_; }
  std::string remoteAddress() const { return remote_; }
  // The transport error behind the close, if any ("tlsv1 alert unknown ca").
  const std::string& errorDetail() const { return error_detail_; }
  bool tlsError() const { return tls_error_; }
  // The TLS stream, for what the handshake established (the peer's
  // certificate); reading it never disturbs the session.
  const TlsStream& stream() const { return stream_; }

 private:
  struct OutFrame {
    FrameType type = FrameType::kControl;
    uint8_t header[kFrameHeaderSize];
    uint8_t trailer[kFrameTrailerSize];  // the body's CRC32C, filled as the body is encrypted
    std::string owned;
    const uint8_t* data = nullptr;
    size_t length = 0;
    std::shared_ptr<const void> keepalive;
  };

  void enqueue(OutFrame&& frame);
  void readHeader();
  void readBody();
  void readTrailer();
  void writeNext();
  void armIdleTimer();
  void armDrainTimer();
  void armHeartbeat();
  void fail(const boost::system::error_code& ec, std::error_code mapped);
  void closeFromSend(std::error_code reason);
  void shutDown(std::error_code reason);
  void notifyClosed();

  TlsStream stream_;
  ConnectionOptions options_;
  FrameHandler* handler_ = nullptr;
  asio::steady_timer idle_timer_;
  asio::steady_timer heartbeat_timer_;
  uint8_t in_header_[kFrameHeaderSize];
  uint8_t in_trailer_[kFrameTrailerSize];
  uint32_t in_crc_ = 0;  // of the body being read, taken as it is decrypted
  size_t in_length_ = 0;
  FrameHeader current_;
  std::string control_in_;
  uint8_t* chunk_in_ = nullptr;
  std::deque<OutFrame> out_;
  bool writing_ = false;
  bool closed_ = false;
  bool close_after_writes_ = false;
  bool chunks_only_keepalive_ = false;
  bool idle_paused_ = false;  // a chunk read waits for a buffer (deferChunk)
  std::error_code close_reason_;   // for closeAfterWrites
  std::error_code closed_reason_;  // what onClosed is told
  size_t queued_bytes_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  std::chrono::steady_clock::time_point last_send_;
  std::string remote_;
  std::string error_detail_;
  bool tls_error_ = false;
};

}  // namespace tapestry::common::net
