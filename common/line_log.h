#pragma once
// Append-only logs of one JSON object per line (a worker's rounds.jsonl).
// A crash in the middle of an append can leave a last line without its
// newline; the next append would glue onto it and make one line that parses
// as neither. Daemons cut such a tail off when they start.
#include <cstddef>
#include <string>

namespace tapestry::common {

// Appends `line` and a newline to `path`, creating the file if needed, and
// makes it durable (fsync) before returning. Throws std::system_error naming
// the file when it cannot be opened, written (a full disk) or synced; a
// short write then leaves a torn line that dropTornLastLine cuts.
void appendLine(const std::string& path, const std::string& line);

// Truncates `path` after its last newline; returns the bytes cut (0 when the
// file ends in a newline, is empty or does not exist). Throws
// std::runtime_error naming the file if it cannot be read or truncated.
size_t dropTornLastLine(const std::string& path);

}  // namespace tapestry::common
