#pragma once
// Internals of the coordinator server: Server::Impl owns the io_context, the
// acceptor and the sessions; Session speaks the protocol with one worker and
// relays its events to the Federation. Single io thread: no locks, no strands.
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/dir_lock.h"
#include "common/net/connection_impl.h"
#include "coordinator/chunk_pool.h"
#include "coordinator/disk_writer.h"
#include "common/status_file.h"
#include "coordinator/federation.h"
#include "common/net/crl_watch_impl.h"
#include "coordinator/server.h"

namespace tapestry::coordinator {

namespace asio = boost::asio;
class Session;

class Server::Impl {
 public:
  explicit Impl(CoordinatorConfig config);
  ~Impl();
  uint16_t port() const;
  void writePortFile() const;
  int run();
  void stop();

  Federation& federation() { return *federation_; }
  asio::io_context& ioContext() { return io_; }
  ChunkPool& chunkPool() { return chunk_pool_; }
  const CoordinatorConfig& config() const { return config_; }
  bool identityActive(const std::string& identity) const;
  void admitted(const std::shared_ptr<Session>& session);
  // got_final: the session closed after the final consensus was written to it.
  void sessionClosed(Session* session, bool was_admitted, bool got_final);
  bool advance();
  // Reads tls.crl again now if it changed (as every minute) and closes the
  // sessions whose certificates it revokes.
  void checkCrl();

 private:
  void accept();
  void handshake(common::net::TlsStream stream, const std::string& address);
  void armDeadline();
  void cutOffSlowPushes();
  void watchInitialProvider();
  void waitOnInitialProvider(const std::string& provider, Clock::time_point asked, Clock::time_point at);
  void cutOffInitialProvider(const std::string& provider);
  void watchCrl();
  // The CRLs just read revoke these sessions' certificates: close them.
  void closeRevokedSessions();
  void checkFinished();
  void startPersist();
  void persisted(const std::string& error, double seconds);
  // state_dir/status.json now, then every kStatusInterval while running.
  void watchStatus();
  void writeStatus(const std::string& state);

  CoordinatorConfig config_;
  std::unique_ptr<common::DirLock> state_lock_;  // before anything in state_dir is read
  asio::io_context io_;
  asio::ssl::context tls_;
  common::net::CrlWatch crl_watch_;
  asio::steady_timer crl_timer_;
  asio::ip::tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer cutoff_timer_;
  asio::steady_timer initial_timer_;
  std::string watched_provider_;  // the member initial_timer_ waits on
  asio::steady_timer linger_timer_;
  asio::steady_timer status_timer_;
  common::StatusFile status_file_;
  std::unique_ptr<Federation> federation_;
  ChunkPool chunk_pool_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  std::set<std::shared_ptr<Session>> unadmitted_;
  std::set<std::string> got_final_;  // members sent the final consensus by this process
  size_t handshaking_ = 0;
  struct HandshakesFrom {
    size_t in_progress = 0;
    bool warned = false;  // refusals told once until they are all done
  };
  std::map<std::string, HandshakesFrom> handshakes_by_address_;
  uint64_t crl_reads_ = 0;  // a handshake that spans a CRL read is checked against the new one
  bool failed_ = false;  // a checkpoint could not be written
  DiskWriter disk_;      // last: it finishes its writes before the rest goes
};

class Session : public common::net::FrameHandler, public std::enable_shared_from_this<Session> {
 public:
  Session(Server::Impl& server, std::string identity, std::shared_ptr<common::net::Connection> connection);
  ~Session() override;
  const std::string& identity() const { return identity_; }
  std::string address() const;
  // Starts the connection; a session that has not said Hello within the
  // handshake timeout is closed (heartbeats alone do not hold a seat).
  void start();

  // Sends the current consensus. While it is not yet durable, its last
  // chunk is held back until consensusDurable().
  void sendConsensus();
  void consensusDurable();
  void requestInitial();
  // Closes once the final consensus has gone out.
  void finish();
  // Its push streamed in past the round's push cutoff and was ended: says
  // why and closes.
  void cutOff(const std::string& why);
  // Whether the CRLs now in `tls` revoke the certificate this session was
  // admitted with.
  bool revokedBy(asio::ssl::context& tls) const;
  // Its certificate was revoked: closes at once, logging who it was; a push
  // in progress is dropped as when a member leaves mid-push.
  void closeRevoked(const std::string& crl_file);

  void onControl(std::string_view body) override;
  bool deferChunk(size_t length, std::function<void()> resume) override;
  uint8_t* chunkBuffer(size_t length) override;
  void onChunk(const uint8_t* data, size_t length, bool intact) override;
  void onClosed(std::error_code ec) override;

 private:
  void onHello(const proto::HelloFromWorker& hello);
  void onPush(const proto::PushFromWorker& push);
  void sendError(proto::ErrorCode code, const std::string& message, bool fatal);
  // Chunks are expected (a push or skipped chunks of a stale one): only they
  // keep the session alive, so a peer that stops mid-push cannot hold the
  // round open with heartbeats.
  void expectChunks(bool on);
  // A refused push whose header is sound: its chunks are read and dropped.
  void skipChunksOf(const proto::PayloadHeader& payload);
  size_t acceptableChunkBytes() const;
  void sendMessage(const proto::CoordinatorMessage& message);

  Server::Impl& server_;
  std::string identity_;
  std::shared_ptr<common::net::Connection> connection_;
  bool admitted_ = false;
  size_t discard_chunks_ = 0;
  size_t discard_chunk_bytes_ = 0;  // the largest a skipped chunk may be
  std::optional<uint64_t> consensus_round_sent_;  // the round whose consensus was last sent
  asio::steady_timer hello_timer_;
  uint8_t* held_ = nullptr;  // the pool buffer the next chunk is read into
  struct HeldChunk {
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> keepalive;
  };
  std::optional<HeldChunk> last_chunk_;  // of a consensus that is not yet durable
  bool finish_when_sent_ = false;
  bool final_sent_ = false;          // the whole final consensus is queued
  bool final_acknowledged_ = false;  // and the member said it saved it
};

}  // namespace tapestry::coordinator
