#include "common/net/crl_watch_impl.h"

#include <ctime>
#include <stdexcept>

#include "common/log.h"
#include "common/net/tls_impl.h"

namespace tapestry::common::net {

namespace {

std::string utc(CrlWatch::SystemClock::time_point t) {
  const std::time_t s = CrlWatch::SystemClock::to_time_t(t);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M UTC", std::gmtime(&s));
  return out;
}

}  // namespace

const char* const kRenewCrl =
    "re-sign it with `tapestry ca crl --ca <CA directory>` and ship the new crl.pem here; it is read again within a "
    "minute of changing";

std::string expiredCrlMessage(const std::string& path, CrlWatch::SystemClock::time_point expiry, bool running) {
  if (!running)
    return "the CRL in '" + path + "' expired on " + utc(expiry) + ", so every TLS handshake would fail; re-sign it " +
           "with `tapestry ca crl --ca <CA directory>`, ship the new crl.pem here and start again";
  return "the CRL in '" + path + "' expired on " + utc(expiry) + ", so every TLS handshake fails; " + kRenewCrl;
}

CrlWatch::CrlWatch(boost::asio::ssl::context& ctx, std::string crl_file) : ctx_(ctx), file_(std::move(crl_file)) {}

bool CrlWatch::check(SystemClock::time_point now) {
  if (file_.empty()) return false;
  bool read = false;
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  if (!ec && mtime != seen_) {
    try {
      expiry_ = addCrls(ctx_, file_);
      const bool again = seen_.has_value();
      seen_ = mtime;
      last_warning_.reset();
      read = true;
      if (again) LOG_INFO("read the CRL in " << file_ << " again: valid until " << utc(expiry_));
    } catch (const std::exception& e) {
      LOG_WARN("the CRL in " << file_ << " changed but cannot be read (" << e.what()
                             << "); the revocations read before stay in force");
      seen_ = mtime;
    }
  }
  if (now < expiry_ - kWarnBefore) return read;
  const auto every = now >= expiry_ ? std::chrono::hours(1) : std::chrono::hours(24);
  if (last_warning_ && now - *last_warning_ < every) return read;
  last_warning_ = now;
  if (now >= expiry_) {
    LOG_ERROR(expiredCrlMessage(file_, expiry_));
  } else {
    LOG_WARN("the CRL in " << file_ << " expires on " << utc(expiry_) << "; after that every TLS handshake fails: "
                           << kRenewCrl);
  }
  return read;
}

}  // namespace tapestry::common::net
