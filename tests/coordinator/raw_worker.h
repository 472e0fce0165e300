#pragma once
// A member speaking the coordinator's protocol by hand over real mutual TLS,
// for tests that play hostile or unlucky members against the in-process
// Server: it sends whatever it is told to and records what comes back.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/net/connection_impl.h"
#include "common/payload.h"
#include "net/net_test_support.h"
#include "proto/tapestry.pb.h"

namespace tapestry::coordinator::testing {

namespace asio = boost::asio;
namespace net = common::net;
using net::testing::runUntil;
using namespace std::chrono_literals;

inline constexpr uint64_t kParams = 2500;
inline constexpr uint32_t kChunk = 1024;  // chunks of 1024, 1024 and 452 elements

// A vector and its FP32 encoding, which points into it.
struct Encoded {
  std::vector<float> values;
  common::EncodedPayload payload;
  size_t chunks() const { return payload.chunks(); }
};
using EncodedPtr = std::shared_ptr<const Encoded>;

// A member speaking the protocol by hand: whatever it is told to send, and
// a record of what the coordinator sent back.
class RawWorker : public net::FrameHandler {
 public:
  RawWorker(asio::io_context& io, asio::ssl::context& tls, uint16_t port, bool heartbeats) : io_(io) {
    net::TlsStream stream(io, tls);
    boost::system::error_code ec;
    stream.socket().connect({asio::ip::address_v4::loopback(), port}, ec);
    EXPECT_FALSE(ec) << ec.message();
    stream.setPeerName("localhost");
    std::optional<boost::system::error_code> shaken;
    stream.asyncHandshake(net::TlsStream::Role::kClient, [&](const boost::system::error_code& e) { shaken = e; });
    EXPECT_TRUE(runUntil(io, [&] { return shaken.has_value(); }));
    EXPECT_FALSE(shaken.value_or(asio::error::timed_out)) << "handshake";
    net::ConnectionOptions options;
    options.idle_timeout = 30s;
    if (heartbeats) {
      proto::WorkerMessage beat;
      beat.mutable_heartbeat();
      options.heartbeat_body = beat.SerializeAsString();
      options.heartbeat_interval = 50ms;
    }
    connection_ = std::make_shared<net::Connection>(std::move(stream), options);
    connection_->start(this);
  }
  ~RawWorker() override {
    if (connection_) connection_->close(common::makeError(common::Errc::kClosed));
  }

  void hello() {
    proto::WorkerMessage m;
    auto* h = m.mutable_hello();
    h->set_protocol_version(common::kProtocolVersion);
    h->set_model_fingerprint("fp-hostile");
    h->set_model_spec(R"({"kind":"mlp"})");
    h->set_parameter_count(kParams);
    h->set_sample_count(100);
    h->set_last_round_seen(-1);
    connection_->sendControl(m.SerializeAsString());
  }
  void push(uint64_t round, const EncodedPtr& encoded, bool initial) {
    proto::WorkerMessage m;
    auto* p = m.mutable_push();
    p->set_round(round);
    p->set_sample_count(100);
    p->set_metric(std::nan(""));
    p->set_initial(initial);
    *p->mutable_payload() = encoded->payload.header();
    connection_->sendControl(m.SerializeAsString());
  }
  void chunk(const EncodedPtr& encoded, size_t index) {
    auto [data, size] = encoded->payload.chunk(index);
    connection_->sendChunk(data, size, encoded);
  }

  bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return runUntil(io_, done, limit);
  }
  bool closed() const { return closed_.has_value(); }
  size_t count(proto::CoordinatorMessage::BodyCase kind) const {
    size_t n = 0;
    for (const auto& m : messages) n += m.body_case() == kind;
    return n;
  }
  bool toldError(const std::string& text) const {
    for (const auto& m : messages)
      if (m.has_error() && m.error().message().find(text) != std::string::npos) return true;
    return false;
  }

  // The consensus of `round`, once all its chunks have arrived.
  std::optional<std::vector<float>> consensus(uint64_t round) const {
    auto it = consensus_.find(round);
    if (it == consensus_.end() || it->second.size() != kParams) return std::nullopt;
    return it->second;
  }

  void onControl(std::string_view body) override {
    proto::CoordinatorMessage m;
    ASSERT_TRUE(m.ParseFromArray(body.data(), static_cast<int>(body.size())));
    if (m.has_consensus()) {
      incoming_round_ = m.consensus().round();
      consensus_[*incoming_round_].clear();
    }
    messages.push_back(std::move(m));
  }
  uint8_t* chunkBuffer(size_t length) override {
    buffer_.resize(length);
    return buffer_.data();
  }
  void onChunk(const uint8_t* data, size_t length, bool intact) override {
    EXPECT_TRUE(intact);
    if (!incoming_round_) return;
    std::vector<float>& z = consensus_[*incoming_round_];
    const size_t at = z.size();
    z.resize(at + length / sizeof(float));
    std::memcpy(z.data() + at, data, length);
  }
  void onClosed(std::error_code ec) override { closed_ = ec; }

  std::vector<proto::CoordinatorMessage> messages;

 private:
  asio::io_context& io_;
  std::shared_ptr<net::Connection> connection_;
  std::vector<uint8_t> buffer_;
  std::optional<uint64_t> incoming_round_;
  std::map<uint64_t, std::vector<float>> consensus_;
  std::optional<std::error_code> closed_;
};

inline std::vector<float> values(float base) {
  std::vector<float> v(kParams);
  for (size_t i = 0; i < kParams; ++i) v[i] = base + 0.001f * static_cast<float>(i);
  return v;
}

inline EncodedPtr encode(const std::vector<float>& v) {
  auto e = std::make_shared<Encoded>();
  e->values = v;
  e->payload = common::EncodedPayload::encode(proto::DTYPE_FP32, e->values.data(), e->values.size(), kChunk);
  return e;
}

}  // namespace tapestry::coordinator::testing
