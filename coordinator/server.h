#pragma once
// tapestry-coordinator's network side: a TLS 1.3 server with mutual
// authentication that admits workers by certificate subject and relays their
// events to a Federation. One io_context thread does all I/O; the maths runs
// in the Aggregator (itself multi-threaded or on a GPU).
#include <memory>

#include "coordinator/coordinator_config.h"

namespace tapestry::coordinator {

class Server {
 public:
  // Loads the durable state (or starts fresh) and binds the listening socket.
  // Throws std::runtime_error / common::ConfigError with a clear message.
  explicit Server(CoordinatorConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  // Serves until the federation has finished and every worker has left, or
  // SIGINT/SIGTERM. Returns the process exit code.
  int run();
  // Stops run() from any thread, as SIGTERM does; state is saved after every round.
  void stop();
  // From any thread: reads tls.crl again now if it changed, as run() does
  // every minute, and closes the sessions whose certificates it revokes.
  void checkCrl();

  class Impl;  // coordinator/session_impl.h

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapestry::coordinator
