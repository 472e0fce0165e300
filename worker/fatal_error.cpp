#include "worker/fatal_error.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace tapestry::worker {

namespace {

// ENOSPC, EDQUOT or EROFS behind `e`; 0 for anything else.
int storageErrno(const std::exception& e) {
  const int kinds[] = {ENOSPC, EDQUOT, EROFS};
  if (const auto* system = dynamic_cast<const std::system_error*>(&e)) {
    const std::error_condition condition = system->code().default_error_condition();
    if (condition.category() == std::generic_category())
      for (int kind : kinds)
        if (condition.value() == kind) return kind;
  }
  const std::string message = e.what();
  for (int kind : kinds)
    if (message.find(std::strerror(kind)) != std::string::npos) return kind;
  return 0;
}

}  // namespace

std::string describeFatalError(const std::exception& e, const std::vector<std::string>& dirs) {
  std::string message = e.what();
  const int kind = storageErrno(e);
  if (kind == 0 || dirs.empty()) return message;
  std::string dir = dirs.front();
  for (const auto& d : dirs)
    if (!d.empty() && message.find(d) != std::string::npos) {
      dir = d;
      break;
    }
  const std::string then = ", then start the worker again: it resumes from the state it saved last";
  switch (kind) {
    case ENOSPC: return message + "; free space on the disk holding " + dir + " (or move it to a larger disk)" + then;
    case EDQUOT:
      return message + "; this user's disk quota is used up on " + dir +
             ": free space there or have the quota raised" + then;
    default:
      return message + "; " + dir + " is on a read-only file system: remount it read-write or point the config at "
                                    "a writable directory" + then;
  }
}

}  // namespace tapestry::worker
