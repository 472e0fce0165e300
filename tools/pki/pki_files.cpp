#include "tools/pki/pki_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace tapestry::tools::detail {
namespace {

std::runtime_error systemError(const std::string& what, int error, const std::string& hint) {
  std::string message = what + ": " + std::strerror(error);
  if (!hint.empty()) message += "; " + hint;
  return std::runtime_error(message);
}

// Writes everything, fixes the mode against the umask and fsyncs; closes fd.
void writeAndClose(int fd, const std::string& path, const std::string& data, mode_t mode) {
  int error = 0;
  if (fchmod(fd, mode) != 0) error = errno;
  size_t written = 0;
  while (error == 0 && written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = errno;
    else written += static_cast<size_t>(n);
  }
  if (error == 0 && fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    throw systemError("cannot write " + path, error, "check free space and permissions");
  }
}

void syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  ::close(fd);
}

std::string parentOf(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

std::string joinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

bool pathExists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

bool ensureDirectory(const std::string& dir, mode_t mode) {
  if (dir.empty()) throw std::invalid_argument("directory path is empty; pass a directory");
  struct stat info {};
  if (::stat(dir.c_str(), &info) == 0) {
    if (!S_ISDIR(info.st_mode)) {
      throw std::runtime_error(dir + " exists and is not a directory; choose another path");
    }
    return false;
  }
  std::error_code ignored;
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  if (::mkdir(dir.c_str(), mode) != 0) {
    throw systemError("cannot create directory " + dir, errno,
                      "check that its parent exists and is writable");
  }
  if (::chmod(dir.c_str(), mode) != 0) {
    throw systemError("cannot set the mode of " + dir, errno, "check its ownership");
  }
  return true;
}

std::string readTextFile(const std::string& path, const std::string& hint) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw systemError("cannot open " + path, errno, hint);
  std::string data;
  std::vector<char> buffer(16384);
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw systemError("cannot read " + path, error, hint);
    }
    if (n == 0) break;
    data.append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

std::vector<std::pair<int, std::string>> recordLines(const std::string& path) {
  std::vector<std::pair<int, std::string>> records;
  if (!pathExists(path)) return records;
  std::istringstream lines(readTextFile(path, "check the permissions of the CA directory"));
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    records.emplace_back(number, line);
  }
  return records;
}

void writeNewFile(const std::string& path, const std::string& data, mode_t mode,
                  const std::string& exists_hint) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    if (errno == EEXIST) throw std::runtime_error(path + " already exists; " + exists_hint);
    throw systemError("cannot create " + path, errno, "check that the directory is writable");
  }
  try {
    writeAndClose(fd, path, data, mode);
  } catch (...) {
    removeQuietly(path);
    throw;
  }
  syncDirectory(parentOf(path));
}

void writeFileAtomic(const std::string& path, const std::string& data, mode_t mode) {
  std::string temp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    throw systemError("cannot create a temporary file next to " + path, errno,
                      "check that the directory is writable");
  }
  try {
    writeAndClose(fd, temp, data, mode);
  } catch (...) {
    removeQuietly(temp);
    throw;
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    int error = errno;
    removeQuietly(temp);
    throw systemError("cannot replace " + path, error, "check that the directory is writable");
  }
  syncDirectory(parentOf(path));
}

void removeQuietly(const std::string& path) { ::unlink(path.c_str()); }

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw systemError("cannot open lock file " + path, errno, "check permissions");
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int error = errno;
    ::close(fd_);
    throw systemError("cannot lock " + path, error, "check that the file system supports flock");
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace tapestry::tools::detail
