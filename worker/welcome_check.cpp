#include "worker/welcome_check.h"

#include <cmath>
#include <sstream>

#include "common/payload.h"
#include "worker/sync_client.h"

namespace tapestry::worker {

std::string welcomeProblem(const proto::WelcomeToWorker& w) {
  std::ostringstream out;
  if (w.algorithm() == proto::ALGORITHM_UNSPECIFIED || !proto::Algorithm_IsValid(w.algorithm()))
    out << "names an unknown algorithm (" << w.algorithm() << ")";
  else if (!(std::isfinite(w.rho()) && w.rho() >= 0))
    out << "asks for rho " << w.rho() << "; its operator must fix algorithm.rho";
  else if (w.local_steps() == 0)
    out << "asks for 0 local steps per round; its operator must fix algorithm.local_steps";
  else if (w.chunk_elements() == 0 || w.chunk_elements() > common::kMaxChunkElements)
    out << "uses chunks of " << w.chunk_elements() << " elements, outside [1, " << common::kMaxChunkElements << "]";
  else if (w.round() > kMaxRound)
    out << "opens round " << w.round() << ", beyond any federation";
  else if (w.algorithm() == proto::ALGORITHM_SCAFFOLD && !(w.correction_scale() >= 0 && w.correction_scale() <= 1))
    out << "asks for a SCAFFOLD correction scale of " << w.correction_scale()
        << ", outside (0, 1]; its operator must fix algorithm.correction_scale";
  else if (w.algorithm() == proto::ALGORITHM_ADMM && !(w.dual_step() >= 0 && w.dual_step() < 2))
    out << "asks for an ADMM dual step of " << w.dual_step() << ", outside (0, 2); its operator must fix "
        << "algorithm.dual_step";
  return out.str();
}

}  // namespace tapestry::worker
