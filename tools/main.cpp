// tapestry: the operator's and members' tool.
#include <iostream>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/pki/pki.h"
#include "worker/ml/partition.h"

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: tapestry <command> [options]\n"
         "commands:\n"
         "  ca         consortium PKI: init a CA, issue coordinator/worker certificates, revoke\n"
         "  partition  split Fashion-MNIST into one shard per worker (iid or Dirichlet label skew)\n"
         "  eval       test accuracy of a consensus checkpoint on the Fashion-MNIST test set\n"
         "  demo       a local federation end to end: certificates, shards, coordinator, workers\n"
         "Run `tapestry <command> --help` for the command's options.\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr, 2);
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "ca") return tapestry::tools::runCaCommand(args);
  if (command == "partition") return tapestry::worker::runPartitionCommand(args);
  if (command == "eval") return tapestry::tools::runEvalCommand(args);
  if (command == "demo") return tapestry::tools::runDemoCommand(args);
  if (command == "--help" || command == "-h" || command == "help") return usage(std::cout, 0);
  std::cerr << "unknown command '" << command << "'\n";
  return usage(std::cerr, 2);
}
