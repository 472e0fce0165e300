#include "coordinator/server.h"

#include <unistd.h>

#include <boost/asio/signal_set.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "common/net/connection_impl.h"
#include "common/payload.h"
#include "common/status_file.h"
#include "coordinator/federation.h"
#include "coordinator/final_fetches.h"
#include "coordinator/listener_impl.h"
#include "coordinator/session_impl.h"

namespace tapestry::coordinator {

using common::Errc;

Server::Impl::Impl(CoordinatorConfig config)
    : config_(std::move(config)),
      state_lock_(std::make_unique<common::DirLock>(config_.state_dir, "coordinator")),
      tls_(common::net::makeServerContext(config_.tls)),
      crl_watch_(tls_, config_.tls.crl_file),
      crl_timer_(io_),
      acceptor_(io_),
      signals_(io_, SIGINT, SIGTERM),
      deadline_timer_(io_),
      cutoff_timer_(io_),
      initial_timer_(io_),
      linger_timer_(io_),
      status_timer_(io_),
      status_file_(config_.state_dir, "coordinator"),
      chunk_pool_(config_.inflight_chunks) {
  // The checkpoint of each new consensus is written by disk_ while the
  // consensus streams out; the last chunk waits for it (Federation::deferPersistence).
  std::filesystem::create_directories(config_.state_dir);
  auto state = loadFederationState(config_.state_dir);
  if (state && state->federation_id != config_.federation_id)
    throw std::runtime_error("state in " + config_.state_dir + " belongs to federation '" + state->federation_id +
                             "', not '" + config_.federation_id + "'; point state_dir elsewhere or fix federation_id");
  if (state) {
    const bool finished =
        state->has_consensus && config_.rounds.max_rounds > 0 && state->round >= config_.rounds.max_rounds;
    LOG_INFO("resuming federation '" << state->federation_id << "' from " << checkpointPath(config_.state_dir)
                                     << ": consensus z_" << state->round << " of " << state->parameter_count
                                     << " parameters; "
                                     << (finished ? "it has finished its rounds.max " +
                                                        std::to_string(config_.rounds.max_rounds) +
                                                        " rounds, so z_" + std::to_string(state->round) +
                                                        " is the final consensus (raise rounds.max to go on)"
                                                  : "round " + std::to_string(state->round + 1) + " is next"));
    if (finished) got_final_ = loadFinalFetches(config_.state_dir, state->round);
  }
  auto aggregator = makeAggregator(config_.device, config_.cpu_threads);
  federation_ = std::make_unique<Federation>(config_, state ? std::move(*state) : FederationState{},
                                             std::move(aggregator), Clock::now());
  federation_->deferPersistence();
  LOG_INFO("aggregation on " << federation_->aggregatorName());

  openListener(acceptor_, config_.listen_host, config_.listen_port);
  if (!config_.port_file.empty()) writePortFile();
}

// Written whole (a temp file renamed over it), so a worker never reads half a port.
void Server::Impl::writePortFile() const {
  const std::string tmp = config_.port_file + ".tmp";
  std::ofstream(tmp) << port() << "\n";
  std::error_code ec;
  std::filesystem::rename(tmp, config_.port_file, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot write listen.port_file '" + config_.port_file +
                             "': its directory does not exist or is not writable; create the directory or point "
                             "listen.port_file elsewhere");
  }
}

Server::Impl::~Impl() = default;

uint16_t Server::Impl::port() const { return acceptor_.local_endpoint().port(); }

int Server::Impl::run() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    LOG_INFO("signal " << signo << ": shutting down; state is saved after every round");
    io_.stop();
  });
  LOG_INFO("listening on " << config_.listen_host << ":" << port() << " (TLS 1.3, mutual authentication), federation '"
                           << config_.federation_id << "', " << algorithmName(config_.algorithm) << ", "
                           << config_.local_steps << " local steps per round");
  if (config_.rule == AggregationRule::kTrimmedMean)
    LOG_INFO("aggregation rule trimmed_mean, dropping " << config_.trim_fraction * 100
                                                        << " % of the values at each end of every element");
  if (config_.rule != AggregationRule::kMean)
    LOG_INFO("aggregation rule " << aggregationRuleName(config_.rule)
                                 << ": every contribution of a round is held until it closes (K x the vector's "
                                    "size); sample counts do not weigh");
  accept();
  watchCrl();
  watchStatus();
  armDeadline();
  checkFinished();
  io_.run();
  writeStatus(failed_ ? "failed" : federation_->finished() ? "finished" : "stopped");
  return failed_ ? 1 : 0;
}

void Server::Impl::watchStatus() {
  writeStatus("running");
  status_timer_.expires_after(common::kStatusInterval);
  status_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) watchStatus();
  });
}

void Server::Impl::writeStatus(const std::string& state) {
  status_file_.write([&] {
    nlohmann::json status = federation_->status(Clock::now());
    status["coordinator"] = {{"state", state},
                             {"pid", static_cast<int64_t>(::getpid())},
                             {"listen", config_.listen_host + ":" + std::to_string(port())},
                             {"aggregator", federation_->aggregatorName()}};
    for (auto& member : status["members"]) {
      auto it = sessions_.find(member["id"].get<std::string>());
      if (it != sessions_.end()) member["address"] = it->second->address();
    }
    return status;
  });
}

// A re-signed CRL is picked up within a minute; one about to expire is
// reported (common/net/crl_watch_impl.h).
void Server::Impl::watchCrl() {
  if (config_.tls.crl_file.empty()) return;
  checkCrl();
  crl_timer_.expires_after(std::chrono::minutes(1));
  crl_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) watchCrl();
  });
}

// Revocation is checked at the handshake; a member revoked while connected
// would otherwise keep contributing until it reconnects.
void Server::Impl::checkCrl() {
  if (!crl_watch_.check()) return;
  ++crl_reads_;
  closeRevokedSessions();
}

void Server::Impl::closeRevokedSessions() {
  // Closing one reaches sessionClosed, which changes both containers.
  std::vector<std::shared_ptr<Session>> revoked;
  for (const auto& [id, session] : sessions_)
    if (session->revokedBy(tls_)) revoked.push_back(session);
  for (const auto& session : unadmitted_)
    if (session->revokedBy(tls_)) revoked.push_back(session);
  for (const auto& session : revoked) session->closeRevoked(config_.tls.crl_file);
}

void Server::Impl::stop() {
  asio::post(io_, [this] { io_.stop(); });
}

void Server::Impl::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted) LOG_WARN("accept failed: " << ec.message());
    } else if (handshaking_ + unadmitted_.size() + sessions_.size() >= config_.max_sessions) {
      LOG_WARN("refusing a connection: " << config_.max_sessions << " sessions already (limits.max_sessions)");
    } else {
      boost::system::error_code addr_ec;
      const auto remote = socket.remote_endpoint(addr_ec);
      const std::string address = addr_ec ? std::string() : remote.address().to_string();
      HandshakesFrom& from = handshakes_by_address_[address];
      if (from.in_progress >= config_.max_handshakes_per_address) {
        if (!std::exchange(from.warned, true))  // once until its handshakes are done, not per connection
          LOG_WARN("refusing connections from " << (address.empty() ? "an unknown address" : address) << ": "
                                                << config_.max_handshakes_per_address
                                                << " TLS handshakes from it are in progress already "
                                                   "(limits.max_handshakes_per_address)");
      } else {
        ++from.in_progress;
        socket.set_option(asio::ip::tcp::no_delay(true));
        handshake(common::net::TlsStream(std::move(socket), tls_), address);
      }
    }
    if (acceptor_.is_open()) accept();
  });
}

void Server::Impl::handshake(common::net::TlsStream stream, const std::string& address) {
  auto pending = std::make_shared<common::net::TlsStream>(std::move(stream));
  auto timer = std::make_shared<asio::steady_timer>(io_, config_.handshake_timeout);
  const uint64_t crl_reads = crl_reads_;
  ++handshaking_;
  timer->async_wait([pending](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      pending->socket().close(ignored);
    }
  });
  pending->asyncHandshake(common::net::TlsStream::Role::kServer, [this, pending, timer, crl_reads, address](
                                                                     const boost::system::error_code& ec) {
    --handshaking_;
    if (auto it = handshakes_by_address_.find(address); it != handshakes_by_address_.end() && --it->second.in_progress == 0)
      handshakes_by_address_.erase(it);
    timer->cancel();
    boost::system::error_code addr_ec;
    auto remote = pending->socket().remote_endpoint(addr_ec);
    std::string from = addr_ec ? "unknown peer" : remote.address().to_string();
    const std::string presented = common::net::peerCertificateSummary(*pending);
    const std::string certificate = presented.empty() ? "" : "; it presented certificate " + presented;
    if (ec) {
      LOG_WARN("TLS handshake from " << from << " refused: " << common::net::handshakeFailureReason(*pending, ec)
                                     << certificate);
      boost::system::error_code ignored;
      pending->socket().close(ignored);
      return;
    }
    // Verified against the CRLs of its start; a newer one read since rules.
    if (crl_reads != crl_reads_ && common::net::peerRevoked(tls_, *pending)) {
      LOG_WARN("TLS handshake from " << from << " refused: certificate revoked by the CRL read during the handshake"
                                     << certificate);
      boost::system::error_code ignored;
      pending->socket().close(ignored);
      return;
    }
    std::string identity = common::net::peerIdentity(*pending);
    if (identity.empty()) {
      LOG_WARN("TLS peer " << from << " has no subject common name; refused");
      return;
    }
    common::net::ConnectionOptions options;
    options.idle_timeout = config_.idle_timeout;
    options.heartbeat_interval = config_.heartbeat_interval;
    proto::CoordinatorMessage beat;
    beat.mutable_heartbeat();
    options.heartbeat_body = beat.SerializeAsString();
    auto connection = std::make_shared<common::net::Connection>(std::move(*pending), options);
    auto session = std::make_shared<Session>(*this, identity, connection);
    unadmitted_.insert(session);
    session->start();
  });
}

void Server::Impl::admitted(const std::shared_ptr<Session>& session) {
  unadmitted_.erase(session);
  sessions_[session->identity()] = session;
  watchInitialProvider();
}

// The member asked for z_0 must begin sending it within the idle timeout,
// and have sent all of it within rounds.deadline_s + rounds.push_grace_s of
// being asked, the bound on any push. One that stays connected without doing
// so (heartbeats keep a session alive; chunks that trickle in keep a push
// alive) would stall the federation before it starts, so it is let go and
// the next member waiting is asked.
void Server::Impl::watchInitialProvider() {
  const std::string provider = federation_->initialProvider();
  if (provider.empty() || provider == watched_provider_) return;
  watched_provider_ = provider;
  const auto asked = Clock::now();
  waitOnInitialProvider(provider, asked, asked + config_.idle_timeout);
}

void Server::Impl::waitOnInitialProvider(const std::string& provider, Clock::time_point asked, Clock::time_point at) {
  initial_timer_.expires_at(at);
  initial_timer_.async_wait([this, provider, asked](const boost::system::error_code& ec) {
    if (ec) return;
    if (federation_->hasConsensus() || federation_->initialProvider() != provider) {
      watched_provider_.clear();
      return;
    }
    const auto whole_by = asked + config_.rounds.deadline + config_.rounds.push_grace;
    if (federation_->initialStarted() && Clock::now() < whole_by) return waitOnInitialProvider(provider, asked, whole_by);
    watched_provider_.clear();
    cutOffInitialProvider(provider);
  });
}

void Server::Impl::cutOffInitialProvider(const std::string& provider) {
  auto it = sessions_.find(provider);
  if (it == sessions_.end()) return;
  const bool begun = federation_->initialStarted();
  const auto limit = begun ? config_.rounds.deadline + config_.rounds.push_grace : config_.idle_timeout;
  std::ostringstream why;
  why << "asked for the initial vector z_0 more than " << std::chrono::duration<double>(limit).count() << " s ago ("
      << (begun ? "rounds.deadline_s + rounds.push_grace_s" : "limits.idle_timeout_s") << "), this member has not "
      << (begun ? "finished" : "begun") << " sending it; another member is asked";
  it->second->cutOff(why.str());
}

bool Server::Impl::identityActive(const std::string& identity) const { return sessions_.count(identity) > 0; }

void Server::Impl::sessionClosed(Session* session, bool was_admitted, bool got_final) {
  if (was_admitted && got_final && got_final_.insert(session->identity()).second)
    recordFinalFetch(config_.state_dir, federation_->round(), session->identity());
  if (was_admitted) {
    auto it = sessions_.find(session->identity());
    if (it != sessions_.end() && it->second.get() == session) {
      federation_->depart(session->identity());
      // Destroy after the current callback unwinds.
      asio::post(io_, [keep = it->second] {});
      sessions_.erase(it);
      std::string provider = federation_->pickInitialProvider();
      if (!provider.empty()) sessions_[provider]->requestInitial();
      watchInitialProvider();
      advance();
    }
  } else {
    for (auto it = unadmitted_.begin(); it != unadmitted_.end(); ++it) {
      if (it->get() == session) {
        asio::post(io_, [keep = *it] {});
        unadmitted_.erase(it);
        break;
      }
    }
  }
  checkFinished();
}

bool Server::Impl::advance() {
  bool any = false;
  while (federation_->advance(Clock::now())) {
    any = true;
    startPersist();
    for (auto& [id, session] : sessions_) session->sendConsensus();
    if (federation_->finished()) {
      LOG_INFO("federation finished after round " << federation_->round() << "; final consensus sent to "
                                                  << sessions_.size() << " workers");
      for (auto& [id, session] : sessions_) session->finish();
    }
  }
  if (any) armDeadline();  // a new round opened: its deadline starts now
  return any;
}

void Server::Impl::startPersist() {
  auto job = federation_->takePersistJob();
  if (!job) return;
  const auto started = Clock::now();
  disk_.post([this, job = std::move(job), started] {
    std::string error;
    try {
      job();
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    asio::post(io_, [this, error, seconds] { persisted(error, seconds); });
  });
}

void Server::Impl::persisted(const std::string& error, double seconds) {
  if (!error.empty()) {
    // Nobody has the new consensus whole, so stopping loses nothing: a
    // restart resumes from the previous checkpoint, which is intact.
    LOG_ERROR("cannot save the coordinator state (" << error << "); stopping. Free space or fix permissions in "
                                                     << config_.state_dir
                                                     << ", then restart: it resumes from the last checkpoint");
    failed_ = true;
    io_.stop();
    return;
  }
  LOG_DEBUG("checkpoint of z_" << federation_->round() << " durable after " << seconds << " s");
  federation_->persisted();
  for (auto& [id, session] : sessions_) session->consensusDurable();
  advance();
}

void Server::Impl::armDeadline() {
  deadline_timer_.cancel();
  cutoff_timer_.cancel();
  if (auto cutoff = federation_->pushCutoff()) {
    cutoff_timer_.expires_at(*cutoff + std::chrono::milliseconds(1));
    cutoff_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) cutOffSlowPushes();
    });
  }
  auto deadline = federation_->nextDeadline();
  if (!deadline) return;
  deadline_timer_.expires_at(*deadline + std::chrono::milliseconds(1));
  deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // Past the deadline every later push re-checks the quorum via advance().
    if (!advance())
      LOG_INFO("round " << federation_->round() + 1 << " deadline passed; it closes as soon as "
                        << config_.rounds.quorum << " workers have contributed");
  });
}

// A push that streams in slower than the round allows (one chunk per idle
// timeout keeps a session alive) would hold the round open for everyone.
void Server::Impl::cutOffSlowPushes() {
  const uint64_t round = federation_->round();
  const auto ids = federation_->cutOffSlowPushes(Clock::now());
  if (ids.empty()) return;
  std::ostringstream seconds;
  seconds << std::chrono::duration<double>(config_.rounds.deadline + config_.rounds.push_grace).count();
  const std::string why = "the push of round " + std::to_string(round) + " was still streaming in " +
                          seconds.str() +
                          " s after the round opened (rounds.deadline_s + rounds.push_grace_s), so it ends here and "
                          "the rest of it is taken from the consensus; send fewer bytes (transfer.encoding bf16 or "
                          "int8) or ask the operator for a longer rounds.push_grace_s";
  for (const std::string& id : ids) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) it->second->cutOff(why);
  }
  advance();
}

void Server::Impl::checkFinished() {
  if (!federation_->finished() || !sessions_.empty()) return;
  // Every member should leave with the final consensus. One that has not
  // fetched it from this process (it was reconnecting when the federation
  // ended, or the coordinator restarted after the final checkpoint) gets
  // limits.final_linger_s to come back for it; otherwise linger briefly for
  // late reconnects.
  std::string missing;
  size_t missing_count = 0;
  for (const std::string& member : federation_->state().members) {
    if (got_final_.count(member)) continue;
    if (missing_count++ < 8) missing += (missing.empty() ? "" : ", ") + member;
  }
  if (missing_count > 8) missing += ", ...";
  const auto linger = missing_count == 0 ? std::chrono::milliseconds(3000) : config_.final_linger;
  if (missing_count > 0)
    LOG_INFO("federation finished; waiting up to " << linger.count() / 1000 << " s for " << missing_count
                                                   << " member(s) to fetch the final consensus: " << missing);
  linger_timer_.expires_after(linger);
  linger_timer_.async_wait([this, missing_count](const boost::system::error_code& ec) {
    if (ec || !sessions_.empty()) return;
    if (missing_count == 0) LOG_INFO("all workers have left with the final consensus; coordinator exits");
    else LOG_WARN("coordinator exits; " << missing_count << " member(s) never fetched the final consensus "
                                        << "(it stays in " << checkpointPath(config_.state_dir)
                                        << "; restarting the coordinator serves it again)");
    io_.stop();
  });
}

Server::Server(CoordinatorConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;
uint16_t Server::port() const { return impl_->port(); }
int Server::run() { return impl_->run(); }
void Server::stop() { impl_->stop(); }
void Server::checkCrl() {
  asio::post(impl_->ioContext(), [impl = impl_.get()] { impl->checkCrl(); });
}

}  // namespace tapestry::coordinator
