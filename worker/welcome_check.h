#pragma once
// What in a coordinator's Welcome this worker cannot act on. Checked before
// anything of it is used, so that a coordinator of another release (or a
// hostile one) stops the member with a reason and its saved state intact,
// rather than failing in the middle of training.
#include <string>

#include "proto/tapestry.pb.h"

namespace tapestry::worker {

// Empty when the Welcome can be acted on; otherwise what is wrong with it,
// phrased to follow "the coordinator's Welcome".
std::string welcomeProblem(const proto::WelcomeToWorker& welcome);

}  // namespace tapestry::worker
