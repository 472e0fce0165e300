#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/crc32c.h"
#include "common/net/tls_stream_impl.h"

namespace tapestry::common::net {

namespace {

// One TLS 1.3 record of application data: 16 KB of plaintext, a 5-byte
// header, the inner content type and a 16-byte AEAD tag; with room to spare.
constexpr size_t kRecordPlain = 16384;
constexpr size_t kRecordRoom = kRecordPlain + 256;

boost::system::error_code sslError(SSL* ssl, int result) {
  const int reason = SSL_get_error(ssl, result);
  if (reason == SSL_ERROR_ZERO_RETURN) return boost::asio::error::eof;
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code != 0) return {static_cast<int>(code), boost::asio::error::get_ssl_category()};
  return boost::asio::ssl::error::unspecified_system_error;
}

}  // namespace

class TlsStream::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::ip::tcp::socket socket, asio::ssl::context& context, size_t buffer_bytes)
      : socket_(std::move(socket)), out_(std::max(buffer_bytes, 2 * kRecordRoom)) {
    ssl_ = SSL_new(context.native_handle());
    if (!ssl_) throw std::runtime_error("SSL_new failed: out of memory");
    // Read-ahead into one record buffer as large as ours: a single recv()
    // takes in many records. Both buffers stay allocated; releasing them
    // would free and reallocate around every record.
    SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_default_read_buffer_len(ssl_, out_.size());
    BIO* bio = BIO_new(method());
    if (!bio) {
      SSL_free(ssl_);
      throw std::runtime_error("BIO_new failed: out of memory");
    }
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);  // the SSL owns it now
  }

  ~Impl() { SSL_free(ssl_); }

  asio::ip::tcp::socket& socket() { return socket_; }
  SSL* ssl() const { return ssl_; }
  bool aborted() const { return aborted_; }
  int firstByte() const { return first_byte_; }

  void setPeerName(const std::string& name) {
    boost::system::error_code not_ip;
    asio::ip::make_address(name, not_ip);
    if (!not_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, name.c_str());
      SSL_set1_host(ssl_, name.c_str());
    }
  }

  void handshake(Role role, Handler handler) {
    boost::system::error_code ignored;  // a closed socket fails at the first read instead
    socket_.non_blocking(true, ignored);
    if (role == Role::kClient) SSL_set_connect_state(ssl_);
    else SSL_set_accept_state(ssl_);
    handshake_ = std::move(handler);
    progress();
  }

  void read(asio::mutable_buffer buffer, bool some, IoHandler handler, uint32_t* crc) {
    read_ = ReadOp{static_cast<uint8_t*>(buffer.data()), buffer.size(), 0, some, crc, std::move(handler)};
    progress();
  }

  void write(const asio::const_buffer* buffers, size_t count, IoHandler handler, Checksum checksum) {
    if (count > kMaxWriteBuffers) throw std::invalid_argument("TlsStream::asyncWrite takes at most 4 buffers");
    write_ = WriteOp{};
    std::copy(buffers, buffers + count, write_.buffers.begin());
    write_.count = count;
    write_.checksum = checksum;
    write_.handler = std::move(handler);
    progress();
  }

  void abort() {
    if (aborted_) return;
    aborted_ = true;
    const auto aborted = asio::error::operation_aborted;
    if (handshake_) post(std::exchange(handshake_, nullptr), aborted);
    if (read_.handler) post(std::exchange(read_.handler, nullptr), aborted, read_.done);
    if (write_.handler) post(std::exchange(write_.handler, nullptr), aborted, write_.done);
  }

 private:
  struct ReadOp {
    uint8_t* data = nullptr;
    size_t size = 0;
    size_t done = 0;
    bool some = false;
    uint32_t* crc = nullptr;
    IoHandler handler;  // set while the read is outstanding
  };
  struct WriteOp {
    std::array<asio::const_buffer, kMaxWriteBuffers> buffers;
    size_t count = 0;
    size_t index = 0;   // buffer being encrypted
    size_t offset = 0;  // into it
    size_t done = 0;    // plaintext bytes encrypted so far
    Checksum checksum;
    uint32_t crc = 0;   // of buffers[checksum.of] so far
    IoHandler handler;
  };

  // ---- the BIO between OpenSSL and our buffers ----
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tapestry batched socket");
      BIO_meth_set_write(made, &Impl::bioWrite);
      BIO_meth_set_read(made, &Impl::bioRead);
      BIO_meth_set_ctrl(made, &Impl::bioCtrl);
      return made;
    }();
    return m;
  }

  static int bioWrite(BIO* bio, const char* data, int length) {
    auto* self = static_cast<Impl*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    const size_t n = std::min(self->out_.size() - self->out_end_, static_cast<size_t>(length));
    if (n == 0) {
      BIO_set_retry_write(bio);
      return -1;
    }
    std::memcpy(self->out_.data() + self->out_end_, data, n);
    self->out_end_ += n;
    return static_cast<int>(n);
  }

  // Straight from the (non-blocking) socket into OpenSSL's buffer. End of
  // input and socket errors are the stream's to report (stream_truncated,
  // or the error), so OpenSSL only ever hears "not yet".
  static int bioRead(BIO* bio, char* data, int length) {
    auto* self = static_cast<Impl*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (!self->input_eof_ && !self->socket_error_) {
      for (;;) {
        const ssize_t n = ::recv(self->socket_.native_handle(), data, static_cast<size_t>(length), 0);
        if (n > 0) {
          if (self->first_byte_ < 0) self->first_byte_ = static_cast<unsigned char>(data[0]);
          return static_cast<int>(n);
        }
        if (n == 0) {
          self->input_eof_ = true;
        } else if (errno == EINTR) {
          continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
          self->socket_error_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
        }
        break;
      }
    }
    BIO_set_retry_read(bio);
    return -1;
  }

  static long bioCtrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

  // ---- driving OpenSSL ----
  void progress() {
    if (aborted_) return;
    if (handshake_) stepHandshake();
    if (read_.handler) stepRead();
    if (write_.handler) stepWrite();
    startSocketWrite();
    startSocketRead();
  }

  // For an operation OpenSSL says needs more input: false (and the
  // operation's error) when no more will come.
  boost::system::error_code inputUnavailable() const {
    if (socket_error_) return socket_error_;
    if (input_eof_) return asio::ssl::error::stream_truncated;
    return {};
  }

  void stepHandshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) return post(std::exchange(handshake_, nullptr), boost::system::error_code{});
    const int reason = SSL_get_error(ssl_, r);
    if (reason == SSL_ERROR_WANT_WRITE) return;  // the flush resumes us
    if (reason == SSL_ERROR_WANT_READ) {
      if (auto ec = inputUnavailable()) post(std::exchange(handshake_, nullptr), ec);
      else need_input_ = true;
      return;
    }
    post(std::exchange(handshake_, nullptr), sslError(ssl_, r));
  }

  void stepRead() {
    ReadOp& op = read_;
    ERR_clear_error();  // once: calls that succeed leave the queue empty
    while (op.done < op.size) {
      size_t got = 0;
      const int r = SSL_read_ex(ssl_, op.data + op.done, op.size - op.done, &got);
      if (r == 1) {
        if (op.crc) *op.crc = common::crc32c(op.data + op.done, got, *op.crc);
        op.done += got;
        if (op.some) break;
        continue;
      }
      const int reason = SSL_get_error(ssl_, r);
      if (reason == SSL_ERROR_WANT_WRITE) return;
      if (reason == SSL_ERROR_WANT_READ) {
        if (op.some && op.done > 0) break;
        if (auto ec = inputUnavailable()) return post(std::exchange(op.handler, nullptr), ec, op.done);
        need_input_ = true;
        return;
      }
      return post(std::exchange(op.handler, nullptr), sslError(ssl_, r), op.done);
    }
    post(std::exchange(op.handler, nullptr), boost::system::error_code{}, op.done);
  }

  void stepWrite() {
    WriteOp& op = write_;
    ERR_clear_error();
    while (op.index < op.count) {
      const asio::const_buffer& b = op.buffers[op.index];
      if (op.offset == b.size()) {
        if (op.index == op.checksum.of)
          for (int i = 0; i < 4; ++i) op.checksum.out[i] = static_cast<uint8_t>(op.crc >> (8 * i));
        ++op.index;
        op.offset = 0;
        continue;
      }
      if (out_.size() - out_end_ < kRecordRoom) {
        compactOutput();
        if (out_.size() - out_end_ < kRecordRoom) break;  // the flush resumes us
      }
      size_t written = 0;
      const int r = SSL_write_ex(ssl_, static_cast<const uint8_t*>(b.data()) + op.offset,
                                 std::min(b.size() - op.offset, kRecordPlain), &written);
      if (r != 1) {
        const int reason = SSL_get_error(ssl_, r);
        if (reason == SSL_ERROR_WANT_WRITE) break;
        if (reason == SSL_ERROR_WANT_READ) {
          if (auto ec = inputUnavailable()) return post(std::exchange(op.handler, nullptr), ec, op.done);
          need_input_ = true;
          break;
        }
        return post(std::exchange(op.handler, nullptr), sslError(ssl_, r), op.done);
      }
      if (op.index == op.checksum.of)
        op.crc = common::crc32c(static_cast<const uint8_t*>(b.data()) + op.offset, written, op.crc);
      op.offset += written;
      op.done += written;
    }
    // Done once the last ciphertext has been handed to the kernel.
    if (op.index == op.count && out_begin_ == out_end_ && !socket_writing_)
      post(std::exchange(op.handler, nullptr), boost::system::error_code{}, op.done);
  }

  void compactOutput() {
    if (socket_writing_ || out_begin_ == 0) return;
    std::memmove(out_.data(), out_.data() + out_begin_, out_end_ - out_begin_);
    out_end_ -= out_begin_;
    out_begin_ = 0;
  }

  // ---- the socket ----
  void startSocketWrite() {
    if (socket_writing_ || out_begin_ == out_end_ || socket_error_) return;
    socket_writing_ = true;
    socket_.async_write_some(asio::buffer(out_.data() + out_begin_, out_end_ - out_begin_),
                             [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                               self->socket_writing_ = false;
                               if (self->aborted_) return;
                               if (ec) return self->socketFailed(ec);
                               self->out_begin_ += n;
                               if (self->out_begin_ == self->out_end_) self->out_begin_ = self->out_end_ = 0;
                               self->progress();
                             });
  }

  // OpenSSL found the socket empty: wait until it is readable, then retry.
  void startSocketRead() {
    if (socket_reading_ || !need_input_ || input_eof_ || socket_error_) return;
    need_input_ = false;
    socket_reading_ = true;
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                         self->socket_reading_ = false;
                         if (self->aborted_) return;
                         if (ec) return self->socketFailed(ec);
                         self->progress();
                       });
  }

  // The first socket error fails everything outstanding with it.
  void socketFailed(const boost::system::error_code& ec) {
    socket_error_ = ec;
    if (handshake_) post(std::exchange(handshake_, nullptr), ec);
    if (read_.handler) post(std::exchange(read_.handler, nullptr), ec, read_.done);
    if (write_.handler) post(std::exchange(write_.handler, nullptr), ec, write_.done);
  }

  void post(Handler handler, boost::system::error_code ec) {
    asio::post(socket_.get_executor(), [h = std::move(handler), ec] { h(ec); });
  }
  void post(IoHandler handler, boost::system::error_code ec, size_t n) {
    asio::post(socket_.get_executor(), [h = std::move(handler), ec, n] { h(ec, n); });
  }

  asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  std::vector<uint8_t> out_;  // ciphertext for the socket: [out_begin_, out_end_) not yet written
  size_t out_begin_ = 0, out_end_ = 0;
  bool socket_reading_ = false;
  bool socket_writing_ = false;
  bool need_input_ = false;  // OpenSSL asked for more ciphertext
  bool input_eof_ = false;
  bool aborted_ = false;
  int first_byte_ = -1;  // of the input, for telling a peer that does not speak TLS
  boost::system::error_code socket_error_;
  Handler handshake_;
  ReadOp read_;
  WriteOp write_;
};

TlsStream::TlsStream(asio::io_context& io, asio::ssl::context& context, size_t buffer_bytes)
    : TlsStream(asio::ip::tcp::socket(io), context, buffer_bytes) {}

TlsStream::TlsStream(asio::ip::tcp::socket socket, asio::ssl::context& context, size_t buffer_bytes)
    : impl_(std::make_shared<Impl>(std::move(socket), context, buffer_bytes)) {}

TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

asio::ip::tcp::socket& TlsStream::socket() { return impl_->socket(); }
SSL* TlsStream::nativeHandle() const { return impl_->ssl(); }
asio::any_io_executor TlsStream::executor() { return impl_->socket().get_executor(); }
void TlsStream::setPeerName(const std::string& name) { impl_->setPeerName(name); }
void TlsStream::asyncHandshake(Role role, Handler handler) { impl_->handshake(role, std::move(handler)); }
void TlsStream::asyncRead(asio::mutable_buffer buffer, IoHandler handler, uint32_t* crc) {
  impl_->read(buffer, false, std::move(handler), crc);
}
void TlsStream::asyncReadSome(asio::mutable_buffer buffer, IoHandler handler) {
  impl_->read(buffer, true, std::move(handler), nullptr);
}
void TlsStream::asyncWrite(const asio::const_buffer* buffers, size_t count, IoHandler handler, Checksum checksum) {
  impl_->write(buffers, count, std::move(handler), checksum);
}
void TlsStream::asyncWrite(const asio::const_buffer* buffers, size_t count, IoHandler handler) {
  impl_->write(buffers, count, std::move(handler), Checksum{});
}
void TlsStream::abort() { impl_->abort(); }
bool TlsStream::aborted() const { return impl_->aborted(); }
int TlsStream::firstByteReceived() const { return impl_->firstByte(); }

}  // namespace tapestry::common::net
