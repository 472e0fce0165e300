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
//   scaffold   w <- z_r; c <- (see below)       f(w), every step then w += c    w
//
// ADMM's dual u never leaves the site; the coordinator's plain weighted mean
// of w + u is then exactly ADMM's z-update, whose fixed point minimises the
// sum of all members' losses. The dual step g is 1 in textbook ADMM; a
// smaller one (Glowinski's relaxation of the multiplier update) leaves the
// fixed point where it is and only slows the dual, which keeps it from
// running away when a few local steps solve the local problem only roughly.
#include <cstddef>
#include <cstdint>
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

// SCAFFOLD's drift correction (Karimireddy et al., 2020), kept in parameter
// space so that it suits any inner optimizer: after every local step the
// member adds c, the difference between everyone's mean move per step and its
// own in the last round. With the plain server the consensus z_r is the mean
// of what the members sent, so each member reads everyone's move from two
// consecutive consensus vectors and nothing but w travels:
//
//   own_i  = (y_i - z_{r-1}) / S - c_i     its own move per step, without c_i
//   mean   = (z_r - z_{r-1}) / S           everyone's (the c_i average to 0)
//   c_i   <- mean - own_i
//
// y_i being what member i sent for round r-1 after S local steps from
// z_{r-1}. The corrections of all members average to zero, so they change
// no member's weight in the consensus, only how far each drifts towards its
// own data: at the fixed point every member's local steps come back to z,
// which then minimises the sum of the members' losses (the exact optimum,
// like ADMM), where FedAvg stops at a mixture of the members' own optima.
//
// "Average to zero" holds only while z_r is exactly the weighted mean of the
// same members as z_{r-1}: a correction that a departed member took with it
// would otherwise stay in the others' sum and move the consensus a little
// further every round. The coordinator sends with each consensus a digest of
// who made it (0 when it is not such a mean); when it changes, every member
// starts again from c = 0, which restores the zero sum.
struct ScaffoldState {
  std::vector<float> anchor;      // z_{r-1}: the consensus the last local round started from
  std::vector<float> correction;  // c_i, added to w after every local step
  uint64_t digest = 0;            // the contributors digest of the anchor
};

// On receiving z_r (n floats) with its contributors digest. `sent` is what
// this member sent for round r-1 and `follows` says that it trained round r-1
// from s.anchor with `steps` local steps. c_i starts again from 0 unless it
// follows and the digest is non-zero and the anchor's. Then s.anchor <- z_r.
// `scale` in (0, 1] damps the correction: c_i <- scale (mean - own_i). Below
// 1 it no longer cancels the drift entirely, but a sum of the corrections
// that is not zero then shrinks by that factor every round. Throws
// std::invalid_argument for steps < 1 or a scale outside (0, 1].
void updateScaffold(const float* z, uint64_t digest, const std::vector<float>& sent, int64_t steps, bool follows,
                    ScaffoldState& s, double scale = 1.0);

// Whether the algorithm keeps the worker's own parameters between rounds
// (easgd, admm) rather than restarting from the consensus.
bool keepsLocalParameters(proto::Algorithm algorithm);

}  // namespace tapestry::worker
