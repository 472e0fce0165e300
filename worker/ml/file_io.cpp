#include "worker/ml/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace tapestry::worker {

void writeFileAtomically(const std::string& path, const void* head, size_t head_bytes, const void* body,
                         size_t body_bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const char* step) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "' (" + step + "): " + why +
                             "; check that the directory exists, is writable and has free space");
  };
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail("open");
  const bool written = (head_bytes == 0 || std::fwrite(head, 1, head_bytes, f) == head_bytes) &&
                       (body_bytes == 0 || std::fwrite(body, 1, body_bytes, f) == body_bytes) &&
                       std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  if (!written) {
    const int saved = errno;
    std::fclose(f);
    errno = saved;
    fail("write");
  }
  if (std::fclose(f) != 0) fail("close");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

std::string readFileBounded(const std::string& path, uint64_t max_bytes, const std::string& remedy) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw std::runtime_error("file '" + path + "' does not exist" + remedy);
  if (!fs::is_regular_file(status)) throw std::runtime_error("'" + path + "' is not a regular file" + remedy);
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot stat '" + path + "': " + ec.message() + remedy);
  if (size > max_bytes) {
    throw std::runtime_error("file '" + path + "' has " + std::to_string(size) + " bytes, more than the limit of " +
                             std::to_string(max_bytes) + remedy);
  }
  errno = 0;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno) + remedy);
  std::string bytes(static_cast<size_t>(size), '\0');
  const size_t got = size == 0 ? 0 : std::fread(bytes.data(), 1, bytes.size(), f);
  const bool failed = std::ferror(f) != 0;
  // A file that grew after the stat is read only up to the limit, never beyond.
  const bool grew = got == bytes.size() && std::fgetc(f) != EOF;
  std::fclose(f);
  if (failed || got != bytes.size()) {
    throw std::runtime_error("cannot read '" + path + "': it ended after " + std::to_string(got) + " of " +
                             std::to_string(size) + " bytes" + remedy);
  }
  if (grew) throw std::runtime_error("file '" + path + "' changed while it was being read" + remedy);
  return bytes;
}

}  // namespace tapestry::worker
