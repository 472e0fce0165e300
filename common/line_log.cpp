#include "common/line_log.h"

#include <filesystem>
#include <fstream>
#include <cstdint>
#include <stdexcept>
#include <system_error>

namespace tapestry::common {

void appendLine(const std::string& path, const std::string& line) {
  std::ofstream(path, std::ios::app) << line << "\n";
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
