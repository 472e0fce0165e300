#include "common/daemon_main.h"

#include <exception>
#include <filesystem>
#include <iostream>

#include "common/config.h"
#include "common/log.h"

namespace tapestry::common {

namespace {

int usage(const std::string& program, std::ostream& out, int code) {
  out << "usage: " << program << " --config FILE.json [--workdir DIR]\n"
      << "  --config   the JSON configuration (see configs/ and docs/configuration.md)\n"
         "  --workdir  directory that relative paths in the config resolve against\n"
         "             (default: the config file's directory)\n";
  return code;
}

}  // namespace

int runDaemon(int argc, char** argv, const std::string& program, const DaemonBody& body) {
  std::string config_path, workdir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--workdir") && i + 1 < argc) {
      (arg == "--config" ? config_path : workdir) = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      return usage(program, std::cout, 0);
    } else {
      std::cerr << program << ": unknown or incomplete argument '" << arg << "'\n";
      return usage(program, std::cerr, 2);
    }
  }
  if (config_path.empty()) {
    std::cerr << program << ": --config is required\n";
    return usage(program, std::cerr, 2);
  }
  std::error_code ec;
  if (!workdir.empty() && !std::filesystem::is_directory(workdir, ec)) {
    std::cerr << program << ": --workdir '" << workdir << "' is not a directory; give the directory the config's "
              << "relative paths resolve against, or leave --workdir out to use the config file's directory\n";
    return 2;
  }
  try {
    return body(config_path, workdir);
  } catch (const ConfigError& e) {
    LOG_ERROR(e.what());
    return 2;
  } catch (const std::exception& e) {
    LOG_ERROR(e.what());
    return 1;
  }
}

}  // namespace tapestry::common
