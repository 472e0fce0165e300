#include "common/status_file.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/log.h"

namespace tapestry::common {

double epochSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string statusPath(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / "status.json").string();
}

std::string writeStatusFile(const std::string& state_dir, nlohmann::json status) {
  status["updated_at"] = epochSeconds();
  const std::string path = statusPath(state_dir), staged = path + ".next";
  {
    std::ofstream out(staged, std::ios::trunc);
    out << status.dump(2) << "\n";
    out.close();
    if (!out) return "cannot write " + staged;
  }
  std::error_code ec;
  std::filesystem::rename(staged, path, ec);
  if (ec) {
    std::filesystem::remove(staged, ec);
    return "cannot rename " + staged + " to " + path + ": " + ec.message();
  }
  return {};
}

void StatusFile::write(const std::function<nlohmann::json()>& build) {
  std::string error;
  try {
    error = writeStatusFile(state_dir_, build());
  } catch (const std::exception& e) {
    error = std::string("cannot build or write the status: ") + e.what();
  }
  if (!error.empty() && !failed_) LOG_WARN(error << "; `tapestry status` will not see this " << who_ << " (it goes on)");
  failed_ = !error.empty();
}

}  // namespace tapestry::common
