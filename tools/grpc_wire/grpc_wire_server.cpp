// `tapestry-grpc-wire serve`: the WireBench service over mutual TLS on
// 127.0.0.1, with the plain synchronous gRPC C++ server.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "tools/grpc_wire/grpc_wire.grpc.pb.h"
#include "tools/grpc_wire/grpc_wire.h"

namespace tapestry::grpc_wire {
namespace {

namespace pb = tapestry::grpcwire;

// Push folds what arrives into a byte count and a WireChecksum; Pull sends
// prefixes of one pattern buffer filled at start-up, so neither side of the
// measurement pays for producing or keeping the data beyond one copy into
// the message, as a framework handing gRPC a slice of its weights would.
class WireBenchService final : public pb::WireBench::Service {
 public:
  WireBenchService() : pattern_(kMaxChunkBytes) { fillPattern(pattern_.data(), pattern_.size()); }

  grpc::Status Push(grpc::ServerContext*, grpc::ServerReader<pb::Chunk>* reader, pb::Summary* summary) override {
    WireChecksum checksum;
    pb::Chunk chunk;
    while (reader->Read(&chunk)) checksum.update(chunk.data().data(), chunk.data().size());
    summary->set_bytes(checksum.bytes());
    summary->set_checksum(checksum.value());
    return grpc::Status::OK;
  }

  grpc::Status Pull(grpc::ServerContext* context, const pb::PullRequest* request,
                    grpc::ServerWriter<pb::Chunk>* writer) override {
    if (request->chunk_bytes() == 0 || request->chunk_bytes() > kMaxChunkBytes) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "chunk_bytes must be in [1, " + std::to_string(kMaxChunkBytes) + "]");
    }
    pb::Chunk chunk;
    for (std::uint64_t sent = 0; sent < request->bytes();) {
      if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
      const std::size_t size =
          static_cast<std::size_t>(std::min<std::uint64_t>(request->chunk_bytes(), request->bytes() - sent));
      chunk.set_data(pattern_.data(), size);
      if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away");
      sent += size;
    }
    return grpc::Status::OK;
  }

 private:
  std::vector<char> pattern_;
};

// Writes "PORT\n" to FILE.tmp and renames it, so a reader never sees half.
void writePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    out.close();
    if (!out) throw WireError("cannot write --port-file " + tmp + " (check that its directory exists)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw WireError("cannot rename " + tmp + " to --port-file " + path);
  }
}

}  // namespace

void runServe(const ServeOptions& options) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = options.tls.ca;
  ssl.pem_key_cert_pairs.push_back({options.tls.key, options.tls.cert});

  WireBenchService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    throw WireError(
        "cannot listen on 127.0.0.1 with mutual TLS (check that --cert and --key are a matching PEM "
        "pair and --ca is a PEM CA certificate; gRPC's log above says more)");
  }
  writePortFile(options.port_file, port);
  std::cout << "tapestry-grpc-wire: serving WireBench on 127.0.0.1:" << port << " (mutual TLS)" << std::endl;

  // SIGTERM and SIGINT are blocked in every thread (see main); take one here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  int signo = 0;
  while (sigwait(&stop, &signo) != 0) {
  }
  std::cout << "tapestry-grpc-wire: signal " << signo << ", shutting down" << std::endl;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
}

}  // namespace tapestry::grpc_wire
