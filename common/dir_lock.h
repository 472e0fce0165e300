#pragma once
// An exclusive lock on a daemon's state directory, held for the life of the
// process (flock on state_dir/LOCK; the kernel drops it when the process
// dies, however it dies). A second coordinator or worker pointed at the same
// directory stops at start instead of deleting the first one's temporary
// files and overwriting its checkpoints.
#include <string>

namespace tapestry::common {

class DirLock {
 public:
  // Creates `dir` if needed and locks it. Throws std::runtime_error naming
  // the directory and the holder's pid when another process holds it.
  DirLock(const std::string& dir, const std::string& who);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  // Whether a live process holds `dir`'s lock now (a daemon runs on it).
  // Probes without creating anything: kFree when there is no LOCK file,
  // kUnknown when it cannot be probed (another user's, or a file system
  // without locks).
  enum class Probe { kHeld, kFree, kUnknown };
  static Probe probe(const std::string& dir);
  // The pid the holder wrote into LOCK (0: none), for telling its process
  // from the one that wrote a status.
  static long holderPid(const std::string& dir);
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace tapestry::common
