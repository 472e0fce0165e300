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
                                  "; this worker knows fedavg, fedprox, easgd and admm");
  }
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
