#pragma once
// Who has received the final consensus, kept across restarts in
// state_dir/final_fetched.jsonl (one {"round": r, "member": id} per line), so
// a coordinator restarted after the federation finished waits only for the
// members that never got z_r, and does not report the others as missing.
#include <cstdint>
#include <set>
#include <string>

namespace tapestry::coordinator {

// The members recorded as having received the final consensus z_round.
// Lines of another round (the federation was later extended) and torn or
// unreadable lines are ignored; a missing file is an empty set.
std::set<std::string> loadFinalFetches(const std::string& state_dir, uint64_t round);

// Appends `member` for z_round. Never throws: a failed write is logged, and
// costs at most a needless wait after a restart.
void recordFinalFetch(const std::string& state_dir, uint64_t round, const std::string& member);

}  // namespace tapestry::coordinator
