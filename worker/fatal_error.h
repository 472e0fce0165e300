#pragma once
// What a worker that stops on a fatal error says, in its log and in
// status.json ("failed"): the error, and for a disk that is full, over quota
// or read-only, what to do about it. A storage error is told by its
// std::system_error code, or by the strerror text that common/checkpoint.h
// and others put in their messages.
#include <exception>
#include <string>
#include <vector>

namespace tapestry::worker {

// e.what(), then the advice for ENOSPC, EDQUOT and EROFS. `dirs` are the
// directories the worker writes (state_dir first, then audit_dir); the
// advice names the one the message names, else the first.
std::string describeFatalError(const std::exception& e, const std::vector<std::string>& dirs);

}  // namespace tapestry::worker
