#include "worker/consensus_rule.h"

#include <stdexcept>
#include <string>

namespace tapestry::worker {

bool keepsLocalParameters(proto::Algorithm algorithm) {
  return algorithm == proto::ALGORITHM_EASGD || algorithm == proto::ALGORITHM_ADMM;
}

LocalRound beginLocalRound(proto::Algorithm algorithm, double rho, const float* z, std::vector<float>& w,
                           std::vector<float>& dual, bool has_local, double dual_step) {
  const size_t n = w.size();
  LocalRound round;
  round.target.assign(z, z + n);
  switch (algorithm) {
    case proto::ALGORITHM_FEDAVG:
    case proto::ALGORITHM_SCAFFOLD:
      w.assign(z, z + n);
      return round;
    case proto::ALGORITHM_FEDPROX:
      w.assign(z, z + n);
      round.rho = rho;
      return round;
    case proto::ALGORITHM_EASGD:
      round.rho = rho;
      return round;
    case proto::ALGORITHM_ADMM:
      if (dual.empty()) dual.assign(n, 0.0f);
      if (dual.size() != n)
        throw std::invalid_argument("ADMM dual holds " + std::to_string(dual.size()) + " values but the model has " +
                                    std::to_string(n));
      if (!(dual_step > 0 && dual_step < 2))
        throw std::invalid_argument("ADMM dual step must lie in (0, 2), got " + std::to_string(dual_step));
      for (size_t i = 0; i < n; ++i) {
        if (has_local) dual[i] += static_cast<float>(dual_step) * (w[i] - z[i]);
        round.target[i] = z[i] - dual[i];
      }
      round.rho = rho;
      return round;
    default:
      throw std::invalid_argument("unknown consensus algorithm " + std::to_string(static_cast<int>(algorithm)) +
                                  "; this worker knows fedavg, fedprox, easgd, admm and scaffold: run the coordinator's Tapestry release here");
  }
}

void updateScaffold(const float* z, uint64_t digest, const std::vector<float>& sent, int64_t steps, bool follows,
                    ScaffoldState& s, double scale) {
  const size_t n = sent.size();
  if (steps < 1) throw std::invalid_argument("SCAFFOLD needs at least one local step per round");
  if (!(scale > 0 && scale <= 1))
    throw std::invalid_argument("SCAFFOLD's correction scale must lie in (0, 1], got " + std::to_string(scale));
  const bool known =
      follows && digest != 0 && digest == s.digest && s.anchor.size() == n && s.correction.size() == n;
  if (!known) {
    s.correction.assign(n, 0.0f);
  } else {
    const double inv = 1.0 / double(steps);
    for (size_t i = 0; i < n; ++i) {
      const double own = (double(sent[i]) - s.anchor[i]) * inv - s.correction[i];
      const double mean = (double(z[i]) - s.anchor[i]) * inv;
      s.correction[i] = static_cast<float>(scale * (mean - own));
    }
  }
  s.anchor.assign(z, z + n);
  s.digest = digest;
}

std::vector<float> outgoingVector(proto::Algorithm algorithm, const std::vector<float>& w,
                                  const std::vector<float>& dual) {
  if (algorithm != proto::ALGORITHM_ADMM) return w;
  if (dual.size() != w.size()) throw std::invalid_argument("ADMM dual and parameters differ in size");
  std::vector<float> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = w[i] + dual[i];
  return out;
}

}  // namespace tapestry::worker
