// Connection over a real loopback TLS 1.3 session: frames arrive whole and in
// order, a bad header closes the receiver with the right error, timeouts and
// heartbeats behave, and onClosed is heard exactly once. Both ends run on one
// io_context driven from the test thread with bounded waits.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>

#include <array>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/net/connection_impl.h"
#include "net/net_test_support.h"

namespace tapestry::common::net {
namespace {

using testing::runUntil;
using testing::TestPki;
using testing::TlsPair;
using namespace std::chrono_literals;

struct Received {
  bool chunk = false;
  std::string bytes;
  bool operator==(const Received& o) const { return chunk == o.chunk && bytes == o.bytes; }
};

std::ostream& operator<<(std::ostream& os, const Received& r) {
  return os << (r.chunk ? "chunk(" : "control(") << r.bytes.size() << " bytes)";
}

// Records every frame and close; chunk bodies land in a buffer it owns.
class RecordingHandler : public FrameHandler {
 public:
  void onControl(std::string_view body) override { received.push_back({false, std::string(body)}); }
  bool deferChunk(size_t, std::function<void()> resume) override {
    if (!defer_chunks) return false;
    defer_chunks = false;
    deferred = std::move(resume);
    return true;
  }
  uint8_t* chunkBuffer(size_t length) override {
    if (reject_chunks) return nullptr;
    buffer_.assign(std::max<size_t>(length, 1), 0);
    return buffer_.data();
  }
  void onChunk(const uint8_t* data, size_t length, bool intact) override {
    EXPECT_EQ(data, buffer_.data());
    if (!intact) ++damaged_chunks;
    received.push_back({true, std::string(reinterpret_cast<const char*>(data), length)});
  }
  void onClosed(std::error_code ec) override {
    ++closed_count;
    closed_reason = ec;
  }

  std::vector<Received> received;
  int closed_count = 0;
  std::error_code closed_reason;
  bool reject_chunks = false;
  bool defer_chunks = false;       // the next chunk waits for deferred()
  std::function<void()> deferred;  // resumes it
  int damaged_chunks = 0;

 private:
  std::vector<uint8_t> buffer_;
};

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

class ConnectionTest : public ::testing::Test {
 protected:
  ConnectionTest()
      : worker_(pki_.issue("ca", "worker-1", tools::CertKind::kWorker)),
        server_ctx_(makeServerContext(pki_.serverSettings())),
        client_ctx_(makeClientContext(pki_.clientSettings(worker_))) {}

  void TearDown() override {
    if (server_) server_->close(makeError(Errc::kClosed));
    if (client_) client_->close(makeError(Errc::kClosed));
    testing::drain(io_);
  }

  // Handshakes a loopback pair and wraps the server end in a Connection; the
  // client end stays a raw TLS stream (pair_->client) unless wrapClient().
  void connectServer(ConnectionOptions server_options) {
    pair_ = std::make_unique<TlsPair>(io_, server_ctx_, client_ctx_);
    ASSERT_TRUE(testing::handshake(io_, *pair_));
    ASSERT_FALSE(*pair_->server_result) << handshakeFailureReason(pair_->server, *pair_->server_result);
    ASSERT_FALSE(*pair_->client_result) << handshakeFailureReason(pair_->client, *pair_->client_result);
    server_ = std::make_shared<Connection>(std::move(pair_->server), std::move(server_options));
    server_->start(&server_handler_);
  }
  void wrapClient(ConnectionOptions client_options) {
    client_ = std::make_shared<Connection>(std::move(pair_->client), std::move(client_options));
    client_->start(&client_handler_);
  }
  void connectBoth(ConnectionOptions server_options = {}, ConnectionOptions client_options = {}) {
    connectServer(std::move(server_options));
    wrapClient(std::move(client_options));
  }

  // Writes raw bytes from the unwrapped client end, as a broken peer would.
  void writeRaw(std::string bytes) {
    raw_out_ = std::move(bytes);
    raw_written_.reset();
    pair_->client.asyncWrite(asio::buffer(raw_out_),
                             [this](const boost::system::error_code& ec, size_t) { raw_written_ = ec; });
  }
  // Waits for the unwrapped client end to see the server hang up.
  bool rawPeerSeesClose() {
    auto result = std::make_shared<std::optional<boost::system::error_code>>();
    pair_->client.asyncRead(asio::buffer(raw_in_),
                            [result](const boost::system::error_code& ec, size_t) { *result = ec; });
    if (!runUntil(io_, [&] { return result->has_value(); })) return false;
    return static_cast<bool>(**result);
  }

  static std::string header(FrameType type, uint32_t length) {
    std::string h(kFrameHeaderSize, '\0');
    encodeFrameHeader({type, length}, reinterpret_cast<uint8_t*>(h.data()));
    return h;
  }
  // A well-formed frame: header, body, then the body's CRC32C.
  static std::string frame(FrameType type, const std::string& body) {
    std::string trailer(kFrameTrailerSize, '\0');
    encodeFrameTrailer(crc32c(body.data(), body.size()), reinterpret_cast<uint8_t*>(trailer.data()));
    return header(type, static_cast<uint32_t>(body.size())) + body + trailer;
  }

  TestPki pki_;
  tools::IssuedFiles worker_;
  asio::io_context io_;
  asio::ssl::context server_ctx_;
  asio::ssl::context client_ctx_;
  std::unique_ptr<TlsPair> pair_;
  std::string raw_out_;
  std::array<char, 64> raw_in_{};
  std::optional<boost::system::error_code> raw_written_;
  RecordingHandler server_handler_;
  RecordingHandler client_handler_;
  std::shared_ptr<Connection> server_;
  std::shared_ptr<Connection> client_;
};

TEST_F(ConnectionTest, ControlAndChunkFramesRoundTripInOrder) {
  connectBoth();
  std::vector<Received> to_server = {{false, "hello"},
                                     {true, randomBytes(1000, 1)},
                                     {false, std::string("\0binary\xff\0", 9)},
                                     {true, randomBytes(300000, 2)},  // many TLS records
                                     {false, ""},
                                     {false, "bye"}};
  std::vector<Received> to_client = {{false, "welcome"}, {true, randomBytes(70000, 3)}};
  auto send = [](Connection& c, const std::vector<Received>& frames) {
    size_t wire = 0;
    for (const auto& f : frames) {
      wire += kFrameHeaderSize + f.bytes.size() + kFrameTrailerSize;
      if (!f.chunk) {
        c.sendControl(f.bytes);
        continue;
      }
      // The keepalive is the only owner of the bytes once sendChunk returns.
      auto owned = std::make_shared<std::string>(f.bytes);
      c.sendChunk(reinterpret_cast<const uint8_t*>(owned->data()), owned->size(), owned);
    }
    return wire;
  };
  size_t client_wire = send(*client_, to_server);
  size_t server_wire = send(*server_, to_client);

  ASSERT_TRUE(runUntil(io_, [&] {
    return server_handler_.received.size() == to_server.size() && client_handler_.received.size() == to_client.size() &&
           client_->queuedBytes() == 0 && server_->queuedBytes() == 0;
  }));
  EXPECT_EQ(server_handler_.received, to_server);
  EXPECT_EQ(client_handler_.received, to_client);
  EXPECT_EQ(server_handler_.damaged_chunks, 0);
  EXPECT_EQ(client_handler_.damaged_chunks, 0);
  EXPECT_EQ(client_->bytesSent(), client_wire);
  EXPECT_EQ(server_->bytesReceived(), client_wire);
  EXPECT_EQ(server_->bytesSent(), server_wire);
  EXPECT_EQ(client_->bytesReceived(), server_wire);
  EXPECT_TRUE(server_->open());
  EXPECT_TRUE(client_->open());
  EXPECT_EQ(server_handler_.closed_count, 0);
  EXPECT_EQ(server_->remoteAddress().rfind("127.0.0.1:", 0), 0u) << server_->remoteAddress();
}

TEST_F(ConnectionTest, OversizedControlLengthClosesReceiverOnceWithFrameTooLarge) {
  connectServer({});
  writeRaw(header(FrameType::kControl, kMaxControlBytes + 1));
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kFrameTooLarge));
  EXPECT_FALSE(server_->open());
  EXPECT_TRUE(rawPeerSeesClose());

  server_->close(makeError(Errc::kRejected));
  server_->sendControl("after close");
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kFrameTooLarge));
  EXPECT_TRUE(server_handler_.received.empty());
}

TEST_F(ConnectionTest, OversizedChunkLengthClosesWithFrameTooLarge) {
  connectServer({});
  writeRaw(header(FrameType::kChunk, kMaxChunkBytes + 1));
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kFrameTooLarge));
  EXPECT_TRUE(rawPeerSeesClose());
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
}

TEST_F(ConnectionTest, BadMagicClosesWithMalformedFrame) {
  connectServer({});
  std::string bad = header(FrameType::kControl, 4) + "ping";
  bad[0] = 'X';
  writeRaw(bad);
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kMalformedFrame));
  EXPECT_TRUE(rawPeerSeesClose());
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_TRUE(server_handler_.received.empty());
}

TEST_F(ConnectionTest, FramesBeforeABadHeaderAreStillDelivered) {
  connectServer({});
  std::string bytes = frame(FrameType::kControl, "first");
  std::string bad = header(FrameType::kControl, 0);
  bad[2] = 1;  // reserved byte set
  writeRaw(bytes + bad);
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kMalformedFrame));
  ASSERT_EQ(server_handler_.received.size(), 1u);
  EXPECT_EQ(server_handler_.received[0].bytes, "first");
}

TEST_F(ConnectionTest, ControlFrameWithAWrongChecksumClosesWithChecksumMismatch) {
  connectServer({});
  std::string good = frame(FrameType::kControl, "first");
  std::string damaged = frame(FrameType::kControl, "second");
  damaged[kFrameHeaderSize] ^= 0x20;  // one bit of the body flipped after the CRC was taken
  writeRaw(good + damaged);
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kChecksumMismatch));
  ASSERT_EQ(server_handler_.received.size(), 1u);
  EXPECT_EQ(server_handler_.received[0].bytes, "first");
  EXPECT_TRUE(rawPeerSeesClose());
}

TEST_F(ConnectionTest, ChunkWithAWrongChecksumReachesTheHandlerAsDamaged) {
  connectServer({});
  std::string chunk = frame(FrameType::kChunk, randomBytes(40000, 9));  // spans records
  chunk[kFrameHeaderSize + 20000] ^= 0x01;
  writeRaw(chunk + frame(FrameType::kControl, "after"));
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.received.size() == 2; }));
  EXPECT_EQ(server_handler_.damaged_chunks, 1);
  EXPECT_TRUE(server_handler_.received[0].chunk);
  EXPECT_EQ(server_handler_.received[1].bytes, "after");
  EXPECT_EQ(server_handler_.closed_count, 0) << "a damaged chunk is the handler's to answer";
}

TEST_F(ConnectionTest, RejectedChunkBufferClosesWithMalformedFrame) {
  connectBoth();
  server_handler_.reject_chunks = true;
  auto data = std::make_shared<std::string>(randomBytes(128, 4));
  client_->sendChunk(reinterpret_cast<const uint8_t*>(data->data()), data->size(), data);
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0 && client_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kMalformedFrame));
  EXPECT_EQ(client_handler_.closed_reason, makeError(Errc::kClosed));
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(client_handler_.closed_count, 1);
}

TEST_F(ConnectionTest, IdleTimeoutClosesASilentSession) {
  ConnectionOptions server_options;
  server_options.idle_timeout = 200ms;
  connectBoth(server_options, {});  // the client sends nothing, not even heartbeats
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0 && client_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kTimeout));
  EXPECT_EQ(client_handler_.closed_reason, makeError(Errc::kClosed));
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(client_handler_.closed_count, 1);
}

TEST_F(ConnectionTest, HeartbeatsKeepAnIdleSessionOpenPastThePeersIdleTimeout) {
  ConnectionOptions server_options;
  server_options.idle_timeout = 400ms;
  ConnectionOptions client_options;
  client_options.heartbeat_interval = 50ms;
  client_options.heartbeat_body = "beat";
  connectBoth(server_options, client_options);

  // Let three of the server's idle timeouts pass with no traffic but beats.
  asio::steady_timer span(io_, 3 * server_options.idle_timeout);
  bool elapsed = false;
  span.async_wait([&](const boost::system::error_code&) { elapsed = true; });
  ASSERT_TRUE(runUntil(io_, [&] { return elapsed || server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_count, 0) << "closed with " << server_handler_.closed_reason.message();
  EXPECT_TRUE(server_->open());
  ASSERT_GE(server_handler_.received.size(), 2u);
  for (const auto& r : server_handler_.received) EXPECT_EQ(r, (Received{false, "beat"}));
  EXPECT_TRUE(client_handler_.received.empty());  // the server has no heartbeat body
}

TEST_F(ConnectionTest, CloseAfterWritesDeliversTheLastMessageFirst) {
  connectBoth();
  auto tail = std::make_shared<std::string>(randomBytes(20000, 5));
  client_->sendControl("goodbye");
  client_->sendChunk(reinterpret_cast<const uint8_t*>(tail->data()), tail->size(), tail);
  client_->closeAfterWrites(makeError(Errc::kRejected));
  client_->sendControl("too late");  // dropped: the session is closing

  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0 && client_handler_.closed_count > 0; }));
  std::vector<Received> expected = {{false, "goodbye"}, {true, *tail}};
  EXPECT_EQ(server_handler_.received, expected);
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kClosed));
  EXPECT_EQ(client_handler_.closed_reason, makeError(Errc::kRejected));
  testing::drain(io_);
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(client_handler_.closed_count, 1);
}

TEST_F(ConnectionTest, CloseAfterWritesWithNothingQueuedClosesAtOnce) {
  connectBoth();
  client_->closeAfterWrites(makeError(Errc::kFinished));
  EXPECT_EQ(client_handler_.closed_count, 1);
  EXPECT_EQ(client_handler_.closed_reason, makeError(Errc::kFinished));
  EXPECT_FALSE(client_->open());
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kClosed));
}

// Waits on the io_context for `span`, or until `stop()` holds.
bool quietFor(asio::io_context& io, std::chrono::milliseconds span, const std::function<bool()>& stop) {
  asio::steady_timer timer(io, span);
  bool elapsed = false;
  timer.async_wait([&](const boost::system::error_code&) { elapsed = true; });
  runUntil(io, [&] { return elapsed || stop(); }, span + 5s);
  timer.cancel();
  return elapsed;
}

TEST_F(ConnectionTest, WithChunksOnlyKeepAliveHeartbeatsNoLongerHoldTheSessionOpen) {
  // Margins are wide (beats every 40 ms, chunks every 100 ms, against 1 s)
  // so that a loaded machine cannot make an honest peer look idle.
  ConnectionOptions server_options;
  server_options.idle_timeout = 1000ms;
  ConnectionOptions client_options;
  client_options.heartbeat_interval = 40ms;
  client_options.heartbeat_body = "beat";
  connectBoth(server_options, client_options);
  // Beats alone keep it open...
  EXPECT_TRUE(quietFor(io_, 2500ms, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_TRUE(server_->open());
  // ...and chunks keep it open in chunks-only mode...
  server_->setChunksOnlyKeepAlive(true);
  auto chunk = std::make_shared<std::string>(randomBytes(1000, 9));
  for (int i = 0; i < 25; ++i) {
    client_->sendChunk(reinterpret_cast<const uint8_t*>(chunk->data()), chunk->size(), chunk);
    EXPECT_TRUE(quietFor(io_, 100ms, [&] { return server_handler_.closed_count > 0; }));
  }
  EXPECT_TRUE(server_->open());
  // ...but beats without chunks no longer do.
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }, 5s));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kTimeout));
}

TEST_F(ConnectionTest, TimeWaitingForAChunkBufferIsNotIdleTime) {
  ConnectionOptions server_options;
  server_options.idle_timeout = 1000ms;
  connectBoth(server_options, {});  // the client sends nothing but one chunk
  server_handler_.defer_chunks = true;
  auto chunk = std::make_shared<std::string>(randomBytes(5000, 10));
  client_->sendChunk(reinterpret_cast<const uint8_t*>(chunk->data()), chunk->size(), chunk);
  ASSERT_TRUE(runUntil(io_, [&] { return static_cast<bool>(server_handler_.deferred); }));
  EXPECT_TRUE(quietFor(io_, 3000ms, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_TRUE(server_->open()) << "closed with " << server_handler_.closed_reason.message();
  server_handler_.deferred();
  ASSERT_TRUE(runUntil(io_, [&] { return !server_handler_.received.empty(); }));
  EXPECT_EQ(server_handler_.received[0], (Received{true, *chunk}));
  // Once the read has resumed, the idle clock runs again.
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }, 5s));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kTimeout));
}

TEST_F(ConnectionTest, SendingPastMaxQueuedBytesClosesWithNotReading) {
  ConnectionOptions server_options;
  server_options.max_queued_bytes = 100000;
  connectBoth(server_options, {});
  auto chunk = std::make_shared<std::string>(randomBytes(60000, 11));
  const auto* data = reinterpret_cast<const uint8_t*>(chunk->data());
  server_->sendChunk(data, chunk->size(), chunk);
  EXPECT_TRUE(server_->open());
  server_->sendChunk(data, chunk->size(), chunk);  // the first is not written yet: 120 kB would be queued
  EXPECT_FALSE(server_->open());
  // The handler hears of it from the io_context, not from inside the send,
  // whose caller may be walking a list of sessions that onClosed changes.
  EXPECT_EQ(server_handler_.closed_count, 0);
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kNotReading));
}

TEST_F(ConnectionTest, AClosePendingFromASendIsToldOnceAndAtOnceByClose) {
  ConnectionOptions server_options;
  server_options.max_queued_bytes = 100000;
  connectBoth(server_options, {});
  auto chunk = std::make_shared<std::string>(randomBytes(60000, 12));
  const auto* data = reinterpret_cast<const uint8_t*>(chunk->data());
  server_->sendChunk(data, chunk->size(), chunk);
  server_->sendChunk(data, chunk->size(), chunk);
  ASSERT_FALSE(server_->open());
  EXPECT_EQ(server_handler_.closed_count, 0);
  // An owner closing it before the io_context runs (its destructor, say) is
  // told now, with the first reason, and never again.
  server_->close(makeError(Errc::kClosed));
  EXPECT_EQ(server_handler_.closed_count, 1);
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kNotReading));
  EXPECT_TRUE(quietFor(io_, 300ms, [&] { return server_handler_.closed_count > 1; }));
  EXPECT_EQ(server_handler_.closed_count, 1);
}

TEST_F(ConnectionTest, ClosingAfterWritesHearsNothingMoreAndGivesUpOnAPeerThatDoesNotRead) {
  ConnectionOptions server_options;
  server_options.idle_timeout = 300ms;
  connectServer(server_options);  // the raw client end never reads
  constexpr size_t kBig = 32u << 20;  // more than loopback socket buffers hold
  auto big = std::make_shared<std::vector<uint8_t>>(kBig, uint8_t{3});
  server_->sendChunk(big->data(), kBig, big);
  server_->closeAfterWrites(makeError(Errc::kRejected));
  EXPECT_TRUE(server_->open());
  writeRaw(frame(FrameType::kControl, "after the fatal error"));
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }, 5s));
  EXPECT_EQ(server_handler_.closed_reason, makeError(Errc::kRejected));
  EXPECT_TRUE(server_handler_.received.empty());
}

// Regression: close() while a large chunk is being written released the
// keepalive at once, yet the composed write went on feeding the rest of the
// chunk to SSL_write from the freed (unmapped) pages.
TEST_F(ConnectionTest, CloseDuringAChunkWriteNeverReadsTheReleasedBytes) {
  connectBoth();
  constexpr size_t kBig = 48u << 20;  // above glibc's mmap threshold: freed means unmapped
  auto big = std::make_shared<std::vector<uint8_t>>(kBig, uint8_t{7});
  const uint8_t* data = big->data();
  client_->sendChunk(data, kBig, std::move(big));  // the keepalive is the only owner now
  client_->close(makeError(Errc::kRejected));
  testing::drain(io_);
  EXPECT_EQ(client_handler_.closed_count, 1);
  EXPECT_EQ(client_handler_.closed_reason, makeError(Errc::kRejected));
  ASSERT_TRUE(runUntil(io_, [&] { return server_handler_.closed_count > 0; }));
  EXPECT_TRUE(server_handler_.received.empty());
}

// Owns each chunk buffer only until the session closes, as the contract allows.
class ReleasingHandler : public RecordingHandler {
 public:
  uint8_t* chunkBuffer(size_t length) override {
    buffer.reset(new uint8_t[length]);
    return buffer.get();
  }
  void onChunk(const uint8_t*, size_t length, bool) override { received.push_back({true, std::string(length, '?')}); }
  void onClosed(std::error_code ec) override {
    buffer.reset();
    RecordingHandler::onClosed(ec);
  }
  std::unique_ptr<uint8_t[]> buffer;
};

// Regression: after close() the handler may free its chunk buffer in
// onClosed(), but a read completion already queued let OpenSSL decrypt the
// rest of the chunk into that freed buffer.
TEST_F(ConnectionTest, CloseDuringAChunkReadNeverWritesIntoTheReleasedBuffer) {
  ReleasingHandler releasing;
  pair_ = std::make_unique<TlsPair>(io_, server_ctx_, client_ctx_);
  ASSERT_TRUE(testing::handshake(io_, *pair_));
  ASSERT_FALSE(*pair_->server_result);
  // The start of a 48 MiB chunk waits in the server's socket before it reads.
  constexpr uint32_t kBig = 48u << 20;
  writeRaw(header(FrameType::kChunk, kBig) + randomBytes(64u << 10, 6));
  ASSERT_TRUE(runUntil(io_, [&] { return raw_written_.has_value(); }));
  ASSERT_FALSE(*raw_written_);
  server_ = std::make_shared<Connection>(std::move(pair_->server), ConnectionOptions{});
  server_->start(&releasing);
  ASSERT_TRUE(runUntil(io_, [&] { return releasing.buffer != nullptr; }));
  io_.poll_one();  // one more step: the next socket read of the body is now queued
  server_->close(makeError(Errc::kRejected));
  EXPECT_EQ(releasing.buffer, nullptr);
  testing::drain(io_);
  EXPECT_EQ(releasing.closed_count, 1);
  EXPECT_TRUE(releasing.received.empty());
  server_.reset();
  testing::drain(io_);
}

}  // namespace
}  // namespace tapestry::common::net
