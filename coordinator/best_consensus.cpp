#include "coordinator/best_consensus.h"

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

bool keepAsBest(const std::string& state_dir) {
  const std::string best = bestCheckpointPath(state_dir), staged = best + ".tmp";
  std::error_code ec;
  fs::remove(staged, ec);
  ec.clear();
  fs::create_hard_link(checkpointPath(state_dir), staged, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(checkpointPath(state_dir), staged, ec);
  }
  if (!ec) fs::rename(staged, best, ec);
  if (ec) LOG_WARN("cannot keep the best consensus as " << best << ": " << ec.message());
  return !ec;
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
