#pragma once
// Internal to tools/pki: the POSIX file operations behind the CA directory.
// Secrets are created with O_CREAT|O_EXCL and their final mode from the first
// byte; shared files are replaced atomically (temp file, fsync, rename, fsync
// of the directory) so a crash never leaves a half-written CRL.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace tapestry::tools::detail {

std::string joinPath(const std::string& dir, const std::string& name);
bool pathExists(const std::string& path);

// Creates dir (and missing parents) when absent, the last component with
// exactly mode. Returns true when dir was created. Throws if dir is a file.
bool ensureDirectory(const std::string& dir, mode_t mode);

// Reads the whole file; the error names path, errno and hint.
std::string readTextFile(const std::string& path, const std::string& hint);

// The records of a line-per-record file of the CA directory: each line that
// is neither blank nor a '#' comment, with its 1-based line number. A missing
// file has none.
std::vector<std::pair<int, std::string>> recordLines(const std::string& path);

// Creates path exclusively with exactly mode and writes data, fsynced.
// Throws "<path> already exists; <exists_hint>" when it exists.
void writeNewFile(const std::string& path, const std::string& data, mode_t mode,
                  const std::string& exists_hint);

// Replaces path atomically with data and exactly mode.
void writeFileAtomic(const std::string& path, const std::string& data, mode_t mode);

// Removes path, ignoring errors; for rolling back a half-done operation.
void removeQuietly(const std::string& path);

// An exclusive flock() on path (created 0644 if absent) for its lifetime, so
// two `tapestry ca` processes never interleave updates of one CA directory.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace tapestry::tools::detail
