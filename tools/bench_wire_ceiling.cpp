#include "tools/bench_wire_ceiling.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <stdexcept>
#include <thread>

#include "common/error.h"
#include "common/net/connection_impl.h"

namespace tapestry::tools {

namespace {

namespace asio = boost::asio;
namespace net = common::net;
using Clock = std::chrono::steady_clock;

// Receives chunk frames into one reused buffer (the transport checks their
// CRC32C as it decrypts them) and counts bytes;
// fulfils `done` when `expected` bytes have arrived.
class SinkHandler : public net::FrameHandler {
 public:
  explicit SinkHandler(size_t chunk_bytes) : buffer_(chunk_bytes) {}
  void expect(size_t bytes, std::promise<Clock::time_point> done) {
    expected_ = bytes;
    received_ = 0;
    done_ = std::move(done);
  }
  void onControl(std::string_view) override {}
  uint8_t* chunkBuffer(size_t length) override { return length <= buffer_.size() ? buffer_.data() : nullptr; }
  void onChunk(const uint8_t*, size_t length, bool intact) override {
    if (!intact) return fail("a chunk arrived with a wrong CRC32C");
    received_ += length;
    if (received_ == expected_) done_.set_value(Clock::now());
  }
  void onClosed(std::error_code ec) override {
    if (received_ != expected_) fail("the transport closed early: " + ec.message());
  }

 private:
  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    done_.set_exception(std::make_exception_ptr(std::runtime_error(why)));
  }
  std::vector<uint8_t> buffer_;
  size_t expected_ = 0, received_ = 0;
  bool failed_ = false;
  std::promise<Clock::time_point> done_;
};

class NullHandler : public net::FrameHandler {
 public:
  void onControl(std::string_view) override {}
  uint8_t* chunkBuffer(size_t) override { return nullptr; }
  void onChunk(const uint8_t*, size_t, bool) override {}
  void onClosed(std::error_code) override {}
};

// One io_context on its own thread, as each end of a real transfer has.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
  template <typename F>
  auto call(F&& f) {  // runs f on the thread and waits for it
    std::packaged_task<decltype(f())()> task(std::forward<F>(f));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
  }
};

}  // namespace

std::vector<double> tlsTransportSeconds(const net::TlsSettings& server, const net::TlsSettings& client,
                                        const uint8_t* data, size_t bytes, size_t chunk_bytes, int repeats) {
  auto server_ctx = net::makeServerContext(server);
  auto client_ctx = net::makeClientContext(client);
  // The handlers outlive the threads: handlers still queued when a thread
  // stops are destroyed with its io_context.
  SinkHandler sink(chunk_bytes);
  NullHandler quiet;
  IoThread receiver, sender;
  std::shared_ptr<net::Connection> in, out;
  std::promise<void> in_ready, out_ready;

  asio::ip::tcp::acceptor acceptor(receiver.io, {asio::ip::address_v4::loopback(), 0});
  const auto endpoint = acceptor.local_endpoint();
  auto fail = [](std::promise<void>& p, const std::string& what, const boost::system::error_code& ec) {
    p.set_exception(std::make_exception_ptr(std::runtime_error(what + ": " + ec.message())));
  };
  auto server_stream = std::make_shared<net::TlsStream>(receiver.io, server_ctx);
  acceptor.async_accept(server_stream->socket(), [&](const boost::system::error_code& ec) {
    if (ec) return fail(in_ready, "ceiling: accept failed", ec);
    server_stream->asyncHandshake(net::TlsStream::Role::kServer, [&](const boost::system::error_code& hec) {
      if (hec) return fail(in_ready, "ceiling: server handshake failed", hec);
      in = std::make_shared<net::Connection>(std::move(*server_stream), net::ConnectionOptions{});
      in->start(&sink);
      in_ready.set_value();
    });
  });
  auto client_stream = std::make_shared<net::TlsStream>(sender.io, client_ctx);
  asio::post(sender.io, [&] {
    client_stream->socket().async_connect(endpoint, [&](const boost::system::error_code& ec) {
      if (ec) return fail(out_ready, "ceiling: connect failed", ec);
      client_stream->socket().set_option(asio::ip::tcp::no_delay(true));
      client_stream->setPeerName("localhost");
      client_stream->asyncHandshake(net::TlsStream::Role::kClient, [&](const boost::system::error_code& hec) {
        if (hec) return fail(out_ready, "ceiling: client handshake failed", hec);
        out = std::make_shared<net::Connection>(std::move(*client_stream), net::ConnectionOptions{});
        out->start(&quiet);
        out_ready.set_value();
      });
    });
  });
  in_ready.get_future().get();
  out_ready.get_future().get();

  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    std::promise<Clock::time_point> done;
    auto finished = done.get_future();
    receiver.call([&] { sink.expect(bytes, std::move(done)); });
    const auto start = Clock::now();
    sender.call([&] {
      for (size_t at = 0; at < bytes; at += chunk_bytes) out->sendChunk(data + at, std::min(chunk_bytes, bytes - at), {});
    });
    seconds.push_back(std::chrono::duration<double>(finished.get() - start).count());
  }
  sender.call([&] {
    out->close(common::makeError(common::Errc::kClosed));
    out.reset();
  });
  receiver.call([&] {
    in->close(common::makeError(common::Errc::kClosed));
    in.reset();
    acceptor.close();
  });
  return seconds;
}

std::vector<double> plainTcpSeconds(const uint8_t* data, size_t bytes, int repeats) {
  constexpr size_t kWriteBytes = 128 * 1024, kReadBytes = 4 * 1024 * 1024;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  asio::ip::tcp::socket out(io), in(io);
  out.connect(acceptor.local_endpoint());
  acceptor.accept(in);
  out.set_option(asio::ip::tcp::no_delay(true));
  std::vector<double> seconds;
  std::vector<uint8_t> sink(kReadBytes);
  for (int r = 0; r < repeats; ++r) {
    // The receiver runs here, the sender on its own thread: one core each.
    const auto start = Clock::now();
    std::thread sender([&] {
      boost::system::error_code ec;
      for (size_t at = 0; at < bytes && !ec; at += kWriteBytes)
        asio::write(out, asio::buffer(data + at, std::min(kWriteBytes, bytes - at)), ec);
    });
    size_t got = 0;
    boost::system::error_code ec;
    while (got < bytes && !ec) got += in.read_some(asio::buffer(sink.data(), std::min(kReadBytes, bytes - got)), ec);
    const auto end = Clock::now();
    sender.join();
    if (got < bytes) throw std::runtime_error("ceiling: plain TCP transfer stopped early: " + ec.message());
    seconds.push_back(std::chrono::duration<double>(end - start).count());
  }
  return seconds;
}

double fsyncedWriteSeconds(const std::string& dir, const uint8_t* data, size_t bytes) {
  const std::string path = dir + "/disk-ceiling.tmp";
  const auto start = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  for (size_t at = 0; at < bytes;) {
    const ssize_t n = ::write(fd, data + at, bytes - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
    }
    at += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::unlink(path.c_str());
  if (!synced) throw std::runtime_error("cannot fsync " + path);
  return seconds;
}

}  // namespace tapestry::tools
