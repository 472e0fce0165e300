#pragma once
// The consensus the members rated best so far, kept beside the checkpoint as
// state_dir/best.ckpt: a hard link to the checkpoint that held it (a copy
// where the file system has no links), so keeping it costs no write. It is a
// coordinator checkpoint like any other (`tapestry eval`, `tapestry
// finetune`); SCAFFOLD rolls back to it when the consensus collapses
// (coordinator/federation.cpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tapestry::coordinator {

std::string bestCheckpointPath(const std::string& state_dir);

// Whether `metric`, the members' validation metric of a consensus (accuracy:
// higher is better; bits per byte: lower is better), beats `best` (< 0: none).
bool improvesOn(double metric, double best, bool higher_is_better);

// Whether `metric` is a collapse from `best`: below half of it for accuracy,
// above twice it for bits per byte. False while there is no best.
bool collapsedFrom(double metric, double best, bool higher_is_better);

// Stages the checkpoint now in state_dir as the next best one
// (best.ckpt.next). False, with a warning logged, when the file system
// refuses both a link and a copy.
bool keepAsBest(const std::string& state_dir);

// Once the checkpoint that records the staged best round is durable, the
// staged file becomes best.ckpt; so best.ckpt always holds the round the
// durable state names. Nothing staged: nothing to do.
void promoteBest(const std::string& state_dir);

// At start: a staged best that the durable state records (`best_round`) was
// stopped short of its promotion and is promoted; any other (the state that
// would have recorded it was never written) is discarded.
void settleBest(const std::string& state_dir, uint64_t best_round, bool has_best);

// The consensus in best.ckpt when it is z_round of the model `fingerprint`
// with `count` parameters; nullopt, with a warning logged, otherwise.
std::optional<std::vector<float>> loadBest(const std::string& state_dir, uint64_t round, size_t count,
                                           const std::string& fingerprint);

}  // namespace tapestry::coordinator
