// libFuzzer target: every input is a script of session events, crashes and
// restarts played against a real Federation (tests/coordinator/federation_script.h).
// A broken invariant aborts; so does an exception, which would stop the
// coordinator. Build and run: docs/protocol.md, "Hostile input".
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/log.h"
#include "coordinator/federation_script.h"

namespace {

std::string stateDir() {
  static const std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tapestry_fuzz_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) ::abort();
    return tmpl;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tapestry::common::setLogLevel(tapestry::common::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = stateDir();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) std::filesystem::remove_all(entry.path());
  tapestry::coordinator::testing::FederationScript script(data, size, dir, [](const std::string& what) {
    std::fprintf(stderr, "federation invariant broken: %s\n", what.c_str());
    ::abort();
  });
  script.run();
  return 0;
}
