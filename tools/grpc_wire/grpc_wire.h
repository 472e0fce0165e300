#pragma once
// tapestry-grpc-wire: a standalone gRPC C++ benchmark, the peer of
// `tapestry bench wire`. Shared pieces of the serve and push commands: the
// options each takes, the deterministic byte pattern both ends send, and
// the cheap checksum that verifies a transfer without any tapestry library.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tapestry::grpc_wire {

// Largest chunk accepted by both ends; message limits sit a little above it.
constexpr std::size_t kMaxChunkBytes = std::size_t{64} << 20;
constexpr int kMaxMessageBytes = static_cast<int>(kMaxChunkBytes + (std::size_t{1} << 20));

// A failure to report as `tapestry-grpc-wire: <what>` with exit status 1.
struct WireError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// PEM contents (not paths) of one end's mutual-TLS material.
struct TlsMaterial {
  std::string ca;
  std::string cert;
  std::string key;
};

struct ServeOptions {
  TlsMaterial tls;
  std::string port_file;
};

struct PushOptions {
  TlsMaterial tls;
  int port = 0;
  std::uint64_t bytes = 0;
  std::uint32_t chunk_bytes = 0;
  int repeats = 0;
};

// Both run until done; they throw WireError on failure. runServe returns
// after SIGTERM or SIGINT, which the caller has blocked in every thread.
void runServe(const ServeOptions& options);
void runPush(const PushOptions& options);

// Fills `size` bytes with 64-bit words k * golden + offset (little-endian),
// the same bytes for any prefix of the same buffer.
inline void fillPattern(char* data, std::size_t size) {
  std::uint64_t k = 0;
  std::size_t at = 0;
  for (; at + 8 <= size; at += 8, ++k) {
    const std::uint64_t word = k * 0x9E3779B97F4A7C15ull + 0x0123456789ABCDEFull;
    std::memcpy(data + at, &word, 8);
  }
  const std::uint64_t word = k * 0x9E3779B97F4A7C15ull + 0x0123456789ABCDEFull;
  std::memcpy(data + at, &word, size - at);
}

// Fletcher-style sums over the stream's 64-bit words (the last one padded
// with zeros). Order-sensitive, independent of how the stream is chunked,
// and about a word per cycle, so it barely shows next to the transfer.
class WireChecksum {
 public:
  void update(const char* data, std::size_t size) {
    bytes_ += size;
    if (pending_size_ > 0) {
      const std::size_t take = size < 8 - pending_size_ ? size : 8 - pending_size_;
      std::memcpy(pending_ + pending_size_, data, take);
      pending_size_ += take;
      data += take;
      size -= take;
      if (pending_size_ < 8) return;
      addPending();
    }
    for (; size >= 8; data += 8, size -= 8) {
      std::uint64_t word;
      std::memcpy(&word, data, 8);
      a_ += word;
      b_ += a_;
    }
    std::memcpy(pending_, data, size);
    pending_size_ = size;
  }

  std::uint64_t bytes() const { return bytes_; }

  std::uint64_t value() const {
    WireChecksum copy = *this;
    if (copy.pending_size_ > 0) copy.addPending();
    return copy.a_ ^ (copy.b_ << 32 | copy.b_ >> 32) ^ (bytes_ * 0xFF51AFD7ED558CCDull);
  }

 private:
  void addPending() {
    std::memset(pending_ + pending_size_, 0, 8 - pending_size_);
    std::uint64_t word;
    std::memcpy(&word, pending_, 8);
    a_ += word;
    b_ += a_;
    pending_size_ = 0;
  }

  std::uint64_t a_ = 0;
  std::uint64_t b_ = 0;
  std::uint64_t bytes_ = 0;
  char pending_[8] = {};
  std::size_t pending_size_ = 0;
};

}  // namespace tapestry::grpc_wire
