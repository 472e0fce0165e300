#include "coordinator/best_consensus.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

#include "common/log.h"
#include "coordinator/federation_state.h"

namespace tapestry::coordinator {

namespace fs = std::filesystem;

std::string bestCheckpointPath(const std::string& state_dir) { return (fs::path(state_dir) / "best.ckpt").string(); }

bool improvesOn(double metric, double best, bool higher_is_better) {
  if (metric < 0) return false;
  if (best < 0) return true;
  return higher_is_better ? metric > best : metric < best;
}

bool collapsedFrom(double metric, double best, bool higher_is_better) {
  if (metric < 0 || best < 0) return false;
  return higher_is_better ? metric < best / 2 : metric > best * 2;
}

namespace {

void syncFile(const std::string& path, std::error_code& ec) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) ec.assign(errno, std::generic_category());
  if (fd >= 0) ::close(fd);
}

std::string stagedPath(const std::string& state_dir) { return bestCheckpointPath(state_dir) + ".next"; }

}  // namespace

bool keepAsBest(const std::string& state_dir) {
  const std::string staged = stagedPath(state_dir);
  std::error_code ec;
  fs::remove(staged, ec);
  ec.clear();
  fs::create_hard_link(checkpointPath(state_dir), staged, ec);
  if (ec) {
    // A copy's bytes reach the disk before it can be promoted; a link's name
    // becomes durable with the checkpoint's directory sync.
    ec.clear();
    fs::copy_file(checkpointPath(state_dir), staged, ec);
    if (!ec) syncFile(staged, ec);
  }
  if (ec) {
    LOG_WARN("cannot keep the best consensus as " << staged << ": " << ec.message());
    fs::remove(staged, ec);
    return false;
  }
  return true;
}

void promoteBest(const std::string& state_dir) {
  const std::string staged = stagedPath(state_dir);
  std::error_code ec;
  if (!fs::exists(staged, ec)) return;
  fs::rename(staged, bestCheckpointPath(state_dir), ec);
  if (ec) LOG_WARN("cannot keep the best consensus as " << bestCheckpointPath(state_dir) << ": " << ec.message());
}

void settleBest(const std::string& state_dir, uint64_t best_round, bool has_best) {
  const std::string staged = stagedPath(state_dir);
  std::error_code ec;
  if (!fs::exists(staged, ec)) return;
  bool recorded = false;
  try {
    auto best = loadFederationStateFile(staged);
    recorded = has_best && best && best->has_consensus && best->round == best_round;
  } catch (const std::exception&) {
    // damaged: the state never recorded it
  }
  if (recorded) return promoteBest(state_dir);
  fs::remove(staged, ec);
}

std::optional<std::vector<float>> loadBest(const std::string& state_dir, uint64_t round, size_t count,
                                           const std::string& fingerprint) {
  const std::string path = bestCheckpointPath(state_dir);
  try {
    auto best = loadFederationStateFile(path);
    if (best && best->has_consensus && best->round == round && best->consensus.size() == count &&
        best->fingerprint == fingerprint)
      return std::move(best->consensus);
    LOG_WARN(path << " does not hold z_" << round << " of model " << fingerprint << " with " << count
                  << " parameters; nothing to restore");
  } catch (const std::exception& e) {
    LOG_WARN("cannot read " << path << ": " << e.what());
  }
  return std::nullopt;
}

}  // namespace tapestry::coordinator
