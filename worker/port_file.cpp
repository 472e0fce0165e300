#include "worker/port_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace tapestry::worker {

namespace {

constexpr size_t kMaxShown = 32;  // of a port file's content, in a message
constexpr size_t kMaxRead = 4096;  // a port file is a line; more is not one

// The content as a message shows it: at most kMaxShown bytes, anything but
// printable ASCII as '?'.
std::string shown(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, kMaxShown))
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (text.size() > kMaxShown) out += "...";
  return out;
}

}  // namespace

PortFileRead readPortFile(const std::string& path) {
  PortFileRead r;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.problem = errno == ENOENT ? "missing" : std::string("cannot be read: ") + std::strerror(errno);
    return r;
  }
  std::string text(kMaxRead, '\0');
  ssize_t n;
  do {
    n = ::read(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  const int error = errno;
  ::close(fd);
  if (n < 0) {
    r.problem = std::string("cannot be read: ") + std::strerror(error);
    return r;
  }
  text.resize(static_cast<size_t>(n));
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    r.problem = "is empty";
    return r;
  }
  const std::string trimmed = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  unsigned long port = 0;
  bool digits = trimmed.size() <= 5;
  for (char c : trimmed) {
    digits = digits && c >= '0' && c <= '9';
    if (digits) port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (!digits || port == 0 || port > 65535) {
    r.problem = "holds '" + shown(trimmed) + "', not a port";
    return r;
  }
  r.port = static_cast<uint16_t>(port);
  return r;
}

std::string describePortFileWait(const std::string& path, const std::string& problem) {
  return "waiting for the coordinator's port file " + path + " (" + problem + ")";
}

}  // namespace tapestry::worker
