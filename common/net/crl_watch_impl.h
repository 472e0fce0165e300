#pragma once
// Keeps the CRL a TLS context checks peers against fresh. A CRL expires
// (`tapestry ca` signs one for 30 days), and once it has, every handshake
// fails. CrlWatch reads the file again whenever it changes, so the operator
// can ship a re-signed CRL (or one revoking another member) without a
// restart, and says in the log, with the command to run, when it is about
// to expire or has.
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace tapestry::common::net {

// How the operator renews a CRL.
extern const char* const kRenewCrl;
// What to tell the operator about a CRL that expired at `expiry`.
// `running`: the daemon goes on and will read a re-signed CRL; otherwise it
// stops at start, and the advice is to start it again.
std::string expiredCrlMessage(const std::string& path, std::chrono::system_clock::time_point expiry,
                              bool running = true);

class CrlWatch {
 public:
  using SystemClock = std::chrono::system_clock;
  static constexpr std::chrono::hours kWarnBefore{24 * 7};

  // `crl_file` empty: nothing to watch. The first check() reads the file.
  CrlWatch(boost::asio::ssl::context& ctx, std::string crl_file);

  // Reloads the file if it changed since the last look, then logs the
  // expiry when within kWarnBefore (at most once a day) or past (at most
  // once an hour). Never throws: a file that cannot be read, or a CRL that
  // the CA in tls.ca did not issue, leaves the CRLs in use, with a warning.
  // True when new CRLs were read: connections admitted before may now be
  // revoked (peerRevoked in tls_impl.h).
  bool check(SystemClock::time_point now = SystemClock::now());

  SystemClock::time_point expiry() const { return expiry_; }

 private:
  boost::asio::ssl::context& ctx_;
  std::string file_;
  std::optional<std::filesystem::file_time_type> seen_;  // when first set, the file was read once
  SystemClock::time_point expiry_ = SystemClock::time_point::max();
  std::optional<SystemClock::time_point> last_warning_;
};

}  // namespace tapestry::common::net
