#include "common/line_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace tapestry::common {

void appendLine(const std::string& path, const std::string& line) {
  const std::string text = line + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + path + " to append to it");
  const char* at = text.data();
  size_t left = text.size();
  int error = 0;
  while (left > 0 && error == 0) {
    const ssize_t n = ::write(fd, at, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = errno;
    else at += n, left -= static_cast<size_t>(n);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  ::close(fd);
  if (error != 0) throw std::system_error(error, std::generic_category(), "cannot append a line to " + path);
}

size_t dropTornLastLine(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + "; check its permissions");
  // Scan back from the end in blocks for the last newline.
  constexpr std::uintmax_t kBlock = 4096;
  std::string block;
  std::uintmax_t end = size;
  std::uintmax_t keep = 0;
  bool found = false;
  while (end > 0 && !found) {
    const std::uintmax_t begin = end > kBlock ? end - kBlock : 0;
    block.resize(end - begin);
    in.seekg(static_cast<std::streamoff>(begin));
    if (!in.read(block.data(), static_cast<std::streamsize>(block.size())))
      throw std::runtime_error("cannot read " + path + "; check its permissions");
    const auto pos = block.rfind('\n');
    if (pos != std::string::npos) {
      keep = begin + pos + 1;
      found = true;
    }
    end = begin;
  }
  if (keep == size) return 0;
  std::filesystem::resize_file(path, keep, ec);
  if (ec)
    throw std::runtime_error("cannot cut the unfinished last line off " + path + " (" + ec.message() +
                             "); check its permissions or delete the file");
  return static_cast<size_t>(size - keep);
}

}  // namespace tapestry::common
