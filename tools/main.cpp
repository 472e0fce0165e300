// tapestry: the operator's and members' tool.
#include <iostream>
#include <string>
#include <vector>

#include "tools/bench_aggregate.h"
#include "tools/bench_convergence.h"
#include "tools/bench_overhead.h"
#include "tools/bench_scale.h"
#include "tools/bench_wire.h"
#include "tools/commands.h"
#include "tools/finetune_command.h"
#include "tools/pki/pki.h"
#include "worker/ml/partition.h"

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: tapestry <command> [options]\n"
         "commands:\n"
         "  ca         consortium PKI: init a CA, issue coordinator/worker certificates, revoke\n"
         "  partition  split Fashion-MNIST into one shard per worker (iid, Dirichlet or labels skew);\n"
         "             `partition text`: one shard per language from Debian's fortunes\n"
         "  eval       the metric of a consensus checkpoint on the Fashion-MNIST test set\n"
         "  finetune   a member's own model: the consensus fine-tuned on its shard, against local-only\n"
         "  demo       a local federation end to end: certificates, shards, coordinator, workers\n"
         "  fingerprint  a model's fingerprint and parameter count, to pin in the coordinator config\n"
         "  status     where a running coordinator's federation stands (from its state_dir)\n"
         "  bench      benchmarks: convergence, aggregate, wire, scale, overhead\n"
         "Run `tapestry <command> --help` for the command's options.\n";
  return code;
}

int bench(const std::vector<std::string>& args) {
  const char* usage =
      "usage: tapestry bench <name> [options]; `tapestry bench <name> --help` lists the options\n"
      "  convergence  consensus against centralised and local-only training, over loopback TLS\n"
      "  aggregate    aggregation throughput against memcpy (CPU) and device copy (GPU)\n"
      "  wire         one worker's push and round trip over loopback TLS against openssl speed\n"
      "  scale        many lightweight workers against one coordinator: round times, peak RSS\n"
      "  overhead     worker step time against a plain LibTorch loop\n";
  if (args.empty()) {
    std::cerr << usage;
    return 2;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  namespace t = tapestry::tools;
  if (args[0] == "convergence") return t::runBenchConvergenceCommand(rest);
  if (args[0] == "aggregate") return t::runBenchAggregateCommand(rest);
  if (args[0] == "wire") return t::runBenchWireCommand(rest);
  if (args[0] == "scale") return t::runBenchScaleCommand(rest);
  if (args[0] == "overhead") return t::runBenchOverheadCommand(rest);
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return 0;
  }
  std::cerr << "unknown benchmark '" << args[0] << "'\n" << usage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr, 2);
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "ca") return tapestry::tools::runCaCommand(args);
  if (command == "partition") return tapestry::worker::runPartitionCommand(args);
  if (command == "eval") return tapestry::tools::runEvalCommand(args);
  if (command == "finetune") return tapestry::tools::runFinetuneCommand(args);
  if (command == "demo") return tapestry::tools::runDemoCommand(args);
  if (command == "fingerprint") return tapestry::tools::runFingerprintCommand(args);
  if (command == "status") return tapestry::tools::runStatusCommand(args);
  if (command == "bench") return bench(args);
  if (command == "--help" || command == "-h" || command == "help") return usage(std::cout, 0);
  std::cerr << "unknown command '" << command << "'\n";
  return usage(std::cerr, 2);
}
