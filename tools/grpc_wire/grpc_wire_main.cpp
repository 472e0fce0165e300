// tapestry-grpc-wire: command line of the gRPC peer of `tapestry bench wire`.
// Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tools/grpc_wire/grpc_wire.h"

namespace tapestry::grpc_wire {
namespace {

const char* kUsage =
    "usage: tapestry-grpc-wire serve --ca CA.crt --cert SERVER.crt --key SERVER.key --port-file FILE\n"
    "       tapestry-grpc-wire push --ca CA.crt --cert CLIENT.crt --key CLIENT.key --port P\n"
    "                               --bytes N --chunk C --repeats R\n"
    "  serve  listens on 127.0.0.1 (port chosen by gRPC, written to FILE) with mutual TLS\n"
    "         until SIGTERM or SIGINT\n"
    "  push   R times: push N bytes to localhost:P as chunks of C bytes, then pull N back;\n"
    "         prints the median upload and download GB/s (GB = 1e9 bytes)\n"
    "  N and C are plain byte counts; 1 <= C <= 67108864\n";

// Bad command line: usage on stderr, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Flags = std::map<std::string, std::string>;

// Parses `--name value` pairs; only names in `allowed`, each at most once.
Flags parseFlags(int argc, char** argv, std::initializer_list<const char*> allowed) {
  Flags flags;
  for (int i = 2; i < argc; ++i) {
    const std::string name = argv[i];
    bool known = false;
    for (const char* a : allowed) known = known || name == a;
    if (!known) throw UsageError("unknown argument " + name);
    if (i + 1 >= argc) throw UsageError(name + " needs a value");
    if (!flags.emplace(name, argv[++i]).second) throw UsageError(name + " given twice");
  }
  for (const char* a : allowed) {
    if (!flags.count(a)) throw UsageError(std::string("missing ") + a);
  }
  return flags;
}

std::uint64_t parseCount(const Flags& flags, const std::string& name, std::uint64_t lo, std::uint64_t hi) {
  const std::string& text = flags.at(name);
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    if (text.empty() || text[0] < '0' || text[0] > '9') throw std::invalid_argument(text);
    value = std::stoull(text, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < lo || value > hi) {
    throw UsageError(name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                     text + "'");
  }
  return value;
}

std::string readFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw WireError("cannot read " + flag + " " + path + ": " + std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (contents.str().empty()) throw WireError(flag + " " + path + " is empty (expected a PEM file)");
  return contents.str();
}

TlsMaterial readTls(const Flags& flags) {
  return TlsMaterial{readFile("--ca", flags.at("--ca")), readFile("--cert", flags.at("--cert")),
                     readFile("--key", flags.at("--key"))};
}

int serveCommand(int argc, char** argv) {
  const Flags flags = parseFlags(argc, argv, {"--ca", "--cert", "--key", "--port-file"});
  ServeOptions options;
  options.tls = readTls(flags);
  options.port_file = flags.at("--port-file");
  // Blocked here, before gRPC starts its threads, so that every thread
  // inherits the mask and runServe can take the signal with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  runServe(options);
  return 0;
}

int pushCommand(int argc, char** argv) {
  const Flags flags = parseFlags(argc, argv, {"--ca", "--cert", "--key", "--port", "--bytes", "--chunk", "--repeats"});
  PushOptions options;
  options.port = static_cast<int>(parseCount(flags, "--port", 1, 65535));
  options.bytes = parseCount(flags, "--bytes", 1, std::numeric_limits<std::int64_t>::max());
  options.chunk_bytes = static_cast<std::uint32_t>(parseCount(flags, "--chunk", 1, kMaxChunkBytes));
  options.repeats = static_cast<int>(parseCount(flags, "--repeats", 1, 1000));
  options.tls = readTls(flags);
  runPush(options);
  return 0;
}

int run(int argc, char** argv) {
  const std::string command = argc >= 2 ? argv[1] : "";
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  try {
    if (command == "serve") return serveCommand(argc, argv);
    if (command == "push") return pushCommand(argc, argv);
    throw UsageError(command.empty() ? "missing command" : "unknown command " + command);
  } catch (const UsageError& e) {
    std::cerr << "tapestry-grpc-wire: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "tapestry-grpc-wire: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace
}  // namespace tapestry::grpc_wire

// Ends with std::_Exit, skipping atexit handlers and static destructors:
// Debian's gRPC 1.51 keeps a few library references it never releases, so
// its threads outlive main, and a channel still retrying a connection can
// build an SSL context while OpenSSL's atexit clean-up frees it (SIGSEGV in
// about half the runs that gave up on an absent server).
int main(int argc, char** argv) {
  const int status = tapestry::grpc_wire::run(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(status);
}
