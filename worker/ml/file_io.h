#pragma once
// Whole-file reads and writes for the data files of ml/: writes are atomic
// (temp file, fsync, rename) so a reader never sees a half-written file, and
// reads refuse anything larger than the caller's limit before allocating.
#include <cstddef>
#include <cstdint>
#include <string>

namespace tapestry::worker {

// Writes head then body to `path` via `path`.tmp.<pid> and rename. Throws
// std::runtime_error naming the path and the failing step.
void writeFileAtomically(const std::string& path, const void* head, size_t head_bytes, const void* body,
                         size_t body_bytes);

// The bytes of the regular file `path`. Throws std::runtime_error naming the
// file if it is missing, not a regular file, unreadable or over `max_bytes`;
// `remedy` ends every message (what the user should do).
std::string readFileBounded(const std::string& path, uint64_t max_bytes, const std::string& remedy);

}  // namespace tapestry::worker
