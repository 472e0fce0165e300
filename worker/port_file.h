#pragma once
// coordinator.port_file: the port a coordinator listening on port 0 wrote
// (tests, local demos). Read before every connection attempt; while it is
// missing or holds something other than a port the worker waits for it
// instead of connecting anywhere.
#include <cstdint>
#include <string>

namespace tapestry::worker {

struct PortFileRead {
  uint16_t port = 0;    // valid when `problem` is empty
  std::string problem;  // "missing", "holds 'x', not a port", "is empty", "cannot be read: ..."
};

// One decimal port (1..65535), surrounding whitespace allowed.
PortFileRead readPortFile(const std::string& path);

// "waiting for the coordinator's port file PATH (PROBLEM)".
std::string describePortFileWait(const std::string& path, const std::string& problem);

}  // namespace tapestry::worker
