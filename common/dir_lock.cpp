#include "common/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace tapestry::common {

DirLock::DirLock(const std::string& dir, const std::string& who) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create state_dir " + dir + ": " + ec.message() + "; fix its path or permissions");
  const std::string path = dir + "/LOCK";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno) +
                             "; the state_dir must be writable by this user");
  // A `tapestry status` probe holds a shared lock for microseconds: a few
  // tries over 200 ms tell it from a daemon that holds the directory.
  int err = 0;
  for (int tries = 1;; ++tries) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) break;
    err = errno;
    if (err != EWOULDBLOCK || tries == 10) break;
    err = 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (err != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw std::runtime_error("state_dir " + dir + " is in use by another process" +
                               (pid.empty() ? std::string() : " (pid " + pid + ")") + "; each " + who +
                               " needs a state_dir of its own: stop the other one or point state_dir elsewhere");
    throw std::runtime_error("cannot lock " + path + ": " + std::strerror(err));
  }
  // The holder's pid, for the message above; the lock is what counts.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // Not fatal: only the message of a refused second process loses the pid.
  }
}

DirLock::Probe DirLock::probe(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Probe::kFree : Probe::kUnknown;
  Probe result = Probe::kFree;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) result = errno == EWOULDBLOCK ? Probe::kHeld : Probe::kUnknown;
  ::close(fd);  // releases a probe lock that was taken
  return result;
}

long DirLock::holderPid(const std::string& dir) {
  std::ifstream in(dir + "/LOCK");
  long pid = 0;
  return in >> pid ? pid : 0;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace tapestry::common
