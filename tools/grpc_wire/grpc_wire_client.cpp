// `tapestry-grpc-wire push`: times Push and Pull of one large vector over
// mutual TLS with the plain synchronous gRPC C++ client.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "tools/grpc_wire/grpc_wire.grpc.pb.h"
#include "tools/grpc_wire/grpc_wire.h"

namespace tapestry::grpc_wire {
namespace {

namespace pb = tapestry::grpcwire;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kConnectTimeout{30};

std::string describe(const grpc::Status& status) {
  return "status " + std::to_string(static_cast<int>(status.error_code())) + ": " + status.error_message();
}

bool mentions(std::string text, std::initializer_list<const char*> words) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* word : words) {
    if (text.find(word) != std::string::npos) return true;
  }
  return false;
}

// A bound for one transfer: generous (10 MB/s) but never endless.
std::chrono::system_clock::time_point transferDeadline(std::uint64_t bytes) {
  return std::chrono::system_clock::now() + std::chrono::seconds(60 + bytes / 10'000'000);
}

// One client's view of the bench: the channel, a stub and the byte pattern
// it pushes (filled once; its checksum is what the server must echo).
class WireClient {
 public:
  explicit WireClient(const PushOptions& options)
      : options_(options), target_("localhost:" + std::to_string(options.port)) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls.ca;
    ssl.pem_private_key = options.tls.key;
    ssl.pem_cert_chain = options.tls.cert;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    channel_ = grpc::CreateCustomChannel(target_, grpc::SslCredentials(ssl), args);
    stub_ = pb::WireBench::NewStub(channel_);
    try {
      data_.reset(new char[options.bytes]);
    } catch (const std::bad_alloc&) {
      throw WireError("cannot allocate the " + std::to_string(options.bytes) + "-byte vector of --bytes");
    }
    fillPattern(data_.get(), options.bytes);
    WireChecksum checksum;
    checksum.update(data_.get(), options.bytes);
    expected_checksum_ = checksum.value();
  }

  // Waits up to kConnectTimeout for READY. A TLS refusal will not heal, so
  // the first one fails at once; a refused connection is retried.
  void waitReady() {
    const auto deadline = std::chrono::system_clock::now() + kConnectTimeout;
    std::string last_error = "no connection attempt finished";
    for (;;) {
      const grpc_connectivity_state state = channel_->GetState(true);
      if (state == GRPC_CHANNEL_READY) return;
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        pb::PullRequest probe;
        probe.set_chunk_bytes(1);
        pb::Chunk ignored;
        auto reader = stub_->Pull(&context, probe);
        while (reader->Read(&ignored)) {
        }
        const grpc::Status status = reader->Finish();
        if (status.ok()) return;
        last_error = describe(status);
        // Under TLS 1.3 the client's side of the handshake ends before the
        // server checks --cert, so a refused certificate reads as a socket
        // the server closed before its HTTP/2 settings.
        if (mentions(status.error_message(), {"ssl", "tls", "handshake", "certificate", "alert"})) {
          throw WireError("the mutual TLS handshake with " + target_ + " failed (" + last_error +
                          "); check that --ca signed the server's certificate, that the server trusts the CA that "
                          "signed --cert, and that --cert and --key match");
        }
        if (mentions(status.error_message(), {"socket closed", "connection reset", "end of file"})) {
          throw WireError(target_ + " closed the connection during the handshake (" + last_error +
                          "); the server most likely refused --cert: check that --cert was issued by the CA the "
                          "server trusts (its --ca) and that the server's log shows why");
        }
      }
      const auto now = std::chrono::system_clock::now();
      if (now >= deadline) {
        throw WireError("no connection to " + target_ + " within " + std::to_string(kConnectTimeout.count()) +
                        " s (last error: " + last_error +
                        "); check that `tapestry-grpc-wire serve` is running "
                        "and wrote that port");
      }
      channel_->WaitForStateChange(state, std::min(deadline, now + std::chrono::seconds(1)));
    }
  }

  // Seconds from the first Write to the Summary; checks bytes and checksum.
  double pushOnce() {
    grpc::ClientContext context;
    context.set_deadline(transferDeadline(options_.bytes));
    pb::Summary summary;
    std::unique_ptr<grpc::ClientWriter<pb::Chunk>> writer = stub_->Push(&context, &summary);
    pb::Chunk chunk;
    const auto start = Clock::now();
    for (std::uint64_t at = 0; at < options_.bytes; at += options_.chunk_bytes) {
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(options_.chunk_bytes, options_.bytes - at));
      chunk.set_data(data_.get() + at, size);
      if (!writer->Write(chunk)) break;  // the stream broke; Finish says why
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    const auto end = Clock::now();
    if (!status.ok()) throw WireError("Push to " + target_ + " failed (" + describe(status) + ")" + hint(status));
    if (summary.bytes() != options_.bytes || summary.checksum() != expected_checksum_) {
      throw WireError("Push to " + target_ + ": the server received " + std::to_string(summary.bytes()) +
                      " bytes with checksum " + std::to_string(summary.checksum()) + ", expected " +
                      std::to_string(options_.bytes) + " bytes with checksum " + std::to_string(expected_checksum_));
    }
    return std::chrono::duration<double>(end - start).count();
  }

  // Seconds from the call to the last chunk read; checks sizes, the total
  // and each chunk's first word (the server sends prefixes of the pattern).
  double pullOnce() {
    grpc::ClientContext context;
    context.set_deadline(transferDeadline(options_.bytes));
    pb::PullRequest request;
    request.set_bytes(options_.bytes);
    request.set_chunk_bytes(options_.chunk_bytes);
    pb::Chunk chunk;
    std::uint64_t received = 0;
    std::string bad;
    const auto start = Clock::now();
    std::unique_ptr<grpc::ClientReader<pb::Chunk>> reader = stub_->Pull(&context, request);
    while (reader->Read(&chunk)) {
      const std::string& data = chunk.data();
      const std::size_t head = std::min<std::size_t>(8, data.size());
      if (bad.empty() && (data.size() > options_.chunk_bytes || data.compare(0, head, data_.get(), head) != 0)) {
        bad = "chunk at byte " + std::to_string(received) + " has " + std::to_string(data.size()) +
              " bytes or does not start with the pattern";
      }
      received += data.size();
    }
    const auto end = Clock::now();
    const grpc::Status status = reader->Finish();
    if (!status.ok()) throw WireError("Pull from " + target_ + " failed (" + describe(status) + ")" + hint(status));
    if (!bad.empty()) throw WireError("Pull from " + target_ + ": " + bad);
    if (received != options_.bytes) {
      throw WireError("Pull from " + target_ + " returned " + std::to_string(received) + " bytes, expected " +
                      std::to_string(options_.bytes));
    }
    return std::chrono::duration<double>(end - start).count();
  }

 private:
  static std::string hint(const grpc::Status& status) {
    switch (status.error_code()) {
      case grpc::StatusCode::RESOURCE_EXHAUSTED: return "; a message exceeded gRPC's size limit, check --chunk";
      case grpc::StatusCode::DEADLINE_EXCEEDED: return "; the transfer ran slower than 10 MB/s";
      case grpc::StatusCode::UNAVAILABLE: return "; check that the server is still running (its log says why)";
      default: return "";
    }
  }

  PushOptions options_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::WireBench::Stub> stub_;
  std::unique_ptr<char[]> data_;
  std::uint64_t expected_checksum_ = 0;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

void runPush(const PushOptions& options) {
  WireClient client(options);
  client.waitReady();
  const double gb = static_cast<double>(options.bytes) / 1e9;
  std::vector<double> upload, download;
  for (int k = 1; k <= options.repeats; ++k) {
    const double push_s = client.pushOnce();
    upload.push_back(gb / push_s);
    std::printf("grpc push %d/%d: %.3f s (%.3f GB/s)\n", k, options.repeats, push_s, gb / push_s);
    std::fflush(stdout);
    const double pull_s = client.pullOnce();
    download.push_back(gb / pull_s);
    std::printf("grpc pull %d/%d: %.3f s (%.3f GB/s)\n", k, options.repeats, pull_s, gb / pull_s);
    std::fflush(stdout);
  }
  std::printf("grpc upload GB/s: %.3f\n", median(upload));
  std::printf("grpc download GB/s: %.3f\n", median(download));
  std::fflush(stdout);
}

}  // namespace tapestry::grpc_wire
