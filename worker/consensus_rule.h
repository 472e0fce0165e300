#pragma once
// The worker's half of each consensus algorithm, as plain functions over flat
// vectors so the update rules can be checked against hand-computed examples
// without a network or a model (DESIGN.md, "Algorithms"):
//
//   algorithm  on receiving z_r                 local objective            sends
//   fedavg     w <- z_r                         f(w)                       w
//   fedprox    w <- z_r                         f(w) + rho/2 |w - z_r|^2   w
//   easgd      keep w                           f(w) + rho/2 |w - z_r|^2   w
//   admm       keep w; u <- u + g (w - z_r)     f(w) + rho/2 |w - z_r + u|^2   w + u
//
// ADMM's dual u never leaves the site; the coordinator's plain weighted mean
// of w + u is then exactly ADMM's z-update, whose fixed point minimises the
// sum of all members' losses. The dual step g is 1 in textbook ADMM; a
// smaller one (Glowinski's relaxation of the multiplier update) leaves the
// fixed point where it is and only slows the dual, which keeps it from
// running away when a few local steps solve the local problem only roughly.
#include <cstddef>
#include <vector>

#include "proto/tapestry.pb.h"

namespace tapestry::worker {

struct LocalRound {
  std::vector<float> target;  // the penalty's anchor: z_r, or z_r - u for ADMM
  double rho = 0;             // 0: no penalty
};

// Applies the "on receiving z_r" column to `w` and `dual` (both n floats;
// `dual` may be empty unless the algorithm is ADMM, where an empty one is
// sized and zeroed). `has_local` says whether w is the result of local
// training (false before the worker's first round: ADMM then leaves u at 0).
// `dual_step` is ADMM's g. Throws std::invalid_argument for an unknown
// algorithm, mismatched sizes or a dual step outside (0, 2).
LocalRound beginLocalRound(proto::Algorithm algorithm, double rho, const float* z, std::vector<float>& w,
                           std::vector<float>& dual, bool has_local, double dual_step = 1.0);

// The vector a worker sends after training: w, or w + u for ADMM.
std::vector<float> outgoingVector(proto::Algorithm algorithm, const std::vector<float>& w,
                                  const std::vector<float>& dual);

// Whether the algorithm keeps the worker's own parameters between rounds
// (easgd, admm) rather than restarting from the consensus.
bool keepsLocalParameters(proto::Algorithm algorithm);

}  // namespace tapestry::worker
