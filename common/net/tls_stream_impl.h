#pragma once
// A TLS 1.3 stream over a TCP socket that moves ciphertext in large batches.
// A custom BIO connects OpenSSL to the socket: it encrypts into a buffer of
// ours that goes to the socket in one system call per batch (up to
// `buffer_bytes`) rather than one per 16 KB record, and it reads ahead
// straight from the socket into its own record buffer of the same size, so
// received ciphertext is copied once by the kernel and never again before
// decryption. Asio's ssl::stream moves one record per asynchronous operation
// through a 17 KB BIO pair, copying it twice; on loopback that capped a push
// well below the cipher's speed.
//
// One io_context thread drives a stream (no locks, no strands). At most one
// handshake, one read and one write are outstanding at a time; a read and a
// write may be outstanding together. Completion handlers are posted, never
// run inside the call that starts an operation. After close() no operation
// touches its buffers again and every pending one completes with
// operation_aborted. Errors use Asio's SSL category (reasons such as "tlsv1
// alert unknown ca"), asio::error::eof for a close_notify and
// ssl::error::stream_truncated for a peer that vanished mid-stream.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace tapestry::common::net {

namespace asio = boost::asio;

class TlsStream {
 public:
  enum class Role { kClient, kServer };
  using Handler = std::function<void(const boost::system::error_code&)>;
  using IoHandler = std::function<void(const boost::system::error_code&, size_t)>;
  static constexpr size_t kMaxWriteBuffers = 4;
  static constexpr size_t kDefaultBufferBytes = 128 * 1024;

  TlsStream(asio::io_context& io, asio::ssl::context& context, size_t buffer_bytes = kDefaultBufferBytes);
  TlsStream(asio::ip::tcp::socket socket, asio::ssl::context& context, size_t buffer_bytes = kDefaultBufferBytes);
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  asio::ip::tcp::socket& socket();
  SSL* nativeHandle() const;
  asio::any_io_executor executor();

  // Client side, before the handshake: sends `name` as SNI (unless it is an
  // IP address) and requires the coordinator certificate to match it.
  void setPeerName(const std::string& name);

  void asyncHandshake(Role role, Handler handler);
  // Completes when `buffer` is full, or with the first error. With `crc`,
  // the CRC32C of the bytes read is chained onto *crc as each record is
  // decrypted, while it is still in cache, instead of in a pass afterwards.
  void asyncRead(asio::mutable_buffer buffer, IoHandler handler, uint32_t* crc = nullptr);
  // Completes once at least one byte has been read.
  void asyncReadSome(asio::mutable_buffer buffer, IoHandler handler);
  // Completes once every byte of `buffers` (the first `count`) has been
  // handed to the socket. The bytes must stay valid until then. With a
  // checksum, the CRC32C of buffers[checksum.of] is taken as it is encrypted
  // and stored little-endian into the 4 bytes at checksum.out, which must lie
  // in a later buffer: a trailer that costs no pass of its own.
  struct Checksum {
    size_t of = kMaxWriteBuffers;  // none
    uint8_t* out = nullptr;
  };
  void asyncWrite(const asio::const_buffer* buffers, size_t count, IoHandler handler, Checksum checksum);
  void asyncWrite(const asio::const_buffer* buffers, size_t count, IoHandler handler);
  void asyncWrite(asio::const_buffer buffer, IoHandler handler) { asyncWrite(&buffer, 1, std::move(handler)); }

  // Stops all I/O on this stream; the socket itself stays for the caller to
  // shut down or close.
  void abort();
  bool aborted() const;
  // The first byte the peer sent (a TLS record starts with a content type,
  // 20..23); -1 before any arrived.
  int firstByteReceived() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tapestry::common::net
