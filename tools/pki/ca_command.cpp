#include <iostream>
#include <map>
#include <set>
#include <stdexcept>

#include "tools/pki/ca_store.h"
#include "tools/pki/pki.h"
#include "tools/pki/pki_files.h"

namespace tapestry::tools {
namespace {

constexpr const char* kUsage =
    "usage: tapestry ca init --dir DIR [--name NAME] [--days N]\n"
    "       tapestry ca issue --ca DIR --out DIR --name NAME (--coordinator | --worker)\n"
    "                         [--dns HOST]... [--ip ADDRESS]... [--days N] [--renew]\n"
    "       tapestry ca revoke --ca DIR (--cert FILE | --serial HEX)\n"
    "       tapestry ca crl --ca DIR      (re-sign crl.pem; it is valid for 30 days)\n";

// A mistake in the command line itself: answered with exit code 2 and usage.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The options of one subcommand: every value option may repeat, and the
// accessors below decide which ones must not.
class ParsedOptions {
 public:
  ParsedOptions(const std::vector<std::string>& args, const std::string& command,
                const std::set<std::string>& value_options, const std::set<std::string>& flags) {
    for (size_t i = 1; i < args.size(); ++i) {
      std::string option = args[i];
      std::string value;
      bool inline_value = false;
      if (size_t eq = option.find('='); option.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = option.substr(eq + 1);
        option = option.substr(0, eq);
        inline_value = true;
      }
      if (flags.count(option) != 0 && !inline_value) {
        flags_.insert(option);
      } else if (value_options.count(option) != 0) {
        if (!inline_value) {
          if (i + 1 >= args.size()) throw UsageError("option " + option + " needs a value");
          value = args[++i];
        }
        values_[option].push_back(value);
      } else {
        throw UsageError("unknown option '" + args[i] + "' for `tapestry ca " + command + "`");
      }
    }
  }

  bool flag(const std::string& option) const { return flags_.count(option) != 0; }

  std::vector<std::string> all(const std::string& option) const {
    auto it = values_.find(option);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }

  std::string optional(const std::string& option, const std::string& fallback) const {
    std::vector<std::string> values = all(option);
    if (values.size() > 1) throw UsageError("option " + option + " is given more than once");
    return values.empty() ? fallback : values.front();
  }

  std::string required(const std::string& option) const {
    std::string value = optional(option, "");
    if (value.empty()) throw UsageError("option " + option + " is required");
    return value;
  }

  int days(int fallback) const {
    std::string text = optional("--days", "");
    if (text.empty()) return fallback;
    size_t used = 0;
    int days = 0;
    try {
      days = std::stoi(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || days < 1 || days > detail::kMaxDays) {
      throw UsageError("--days must be a whole number from 1 to " +
                       std::to_string(detail::kMaxDays) + ", got '" + text + "'");
    }
    return days;
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
};

int runInit(const std::vector<std::string>& args, std::ostream& out) {
  ParsedOptions parsed(args, "init", {"--dir", "--name", "--days"}, {});
  CaOptions options;
  options.dir = parsed.required("--dir");
  options.name = parsed.optional("--name", options.name);
  options.days = parsed.days(options.days);
  initCa(options);
  out << "created CA '" << options.name << "' in " << options.dir << ":\n"
      << "  " << detail::joinPath(options.dir, detail::kCaCertFile)
      << "  (distribute to every coordinator and worker)\n"
      << "  " << detail::joinPath(options.dir, detail::kCaKeyFile)
      << "  (private, mode 0600: keep it off the training hosts)\n"
      << "  " << detail::joinPath(options.dir, detail::kCrlFile)
      << "  (empty CRL, valid 30 days; refresh with `tapestry ca crl`)\n";
  return 0;
}

int runIssue(const std::vector<std::string>& args, std::ostream& out) {
  ParsedOptions parsed(args, "issue", {"--ca", "--out", "--name", "--dns", "--ip", "--days"},
                       {"--coordinator", "--worker", "--renew"});
  IssueOptions options;
  options.ca_dir = parsed.required("--ca");
  options.out_dir = parsed.required("--out");
  options.name = parsed.required("--name");
  if (parsed.flag("--coordinator") == parsed.flag("--worker")) {
    throw UsageError("pass exactly one of --coordinator and --worker");
  }
  options.kind = parsed.flag("--coordinator") ? CertKind::kCoordinator : CertKind::kWorker;
  options.dns_names = parsed.all("--dns");
  options.ip_addresses = parsed.all("--ip");
  options.days = parsed.days(options.days);
  options.renew = parsed.flag("--renew");
  IssuedFiles files = issueCertificate(options);
  out << "issued " << (options.kind == CertKind::kCoordinator ? "coordinator" : "worker")
      << " certificate '" << options.name << "' (serial " << certificateSerialHex(files.cert_path)
      << "):\n"
      << "  " << files.cert_path << "\n"
      << "  " << files.key_path << "  (private, mode 0600)\n";
  for (const std::string& serial : files.still_live)
    out << "  the earlier certificate of '" << options.name << "' (serial " << serial << ") is still valid: once "
        << "this one is in place, revoke it with tapestry ca revoke --ca " << options.ca_dir << " --serial " << serial
        << "\n";
  if (options.kind == CertKind::kCoordinator && options.dns_names.empty() && options.ip_addresses.empty())
    out << "  valid for DNS localhost, IP 127.0.0.1 and IP ::1 only (no --dns or --ip given): workers on other "
           "machines need a certificate issued with the coordinator's --dns name or --ip address\n";
  return 0;
}

int runRevoke(const std::vector<std::string>& args, std::ostream& out) {
  ParsedOptions parsed(args, "revoke", {"--ca", "--cert", "--serial"}, {});
  std::string ca_dir = parsed.required("--ca");
  const std::string cert_path = parsed.optional("--cert", "");
  const std::string serial = parsed.optional("--serial", "");
  if (cert_path.empty() == serial.empty()) throw UsageError("pass exactly one of --cert FILE and --serial HEX");
  const bool fresh = cert_path.empty() ? revokeSerial(ca_dir, serial) : revokeCertificate(ca_dir, cert_path);
  out << (fresh ? "revoked serial " : "serial ") << (cert_path.empty() ? serial : certificateSerialHex(cert_path))
      << (cert_path.empty() ? "" : " (" + cert_path + ")") << (fresh ? "" : " was revoked already") << "\n"
      << "  wrote " << detail::joinPath(ca_dir, detail::kCrlFile)
      << "; copy it to the coordinator and workers\n";
  return 0;
}

int runCrl(const std::vector<std::string>& args, std::ostream& out) {
  ParsedOptions parsed(args, "crl", {"--ca"}, {});
  std::string ca_dir = parsed.required("--ca");
  refreshCrl(ca_dir);
  out << "wrote " << detail::joinPath(ca_dir, detail::kCrlFile) << " (valid 30 days)\n";
  return 0;
}

void report(std::ostream& stream, const std::string& text) noexcept {
  try {
    stream << text << std::flush;
  } catch (...) {
  }
}

}  // namespace

int runCaCommand(const std::vector<std::string>& args) {
  return runCaCommand(args, std::cout, std::cerr);
}

int runCaCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.empty()) throw UsageError("missing subcommand");
    const std::string& command = args.front();
    if (command == "help" || command == "--help" || command == "-h") {
      report(out, kUsage);
      return 0;
    }
    if (command == "init") return runInit(args, out);
    if (command == "issue") return runIssue(args, out);
    if (command == "revoke") return runRevoke(args, out);
    if (command == "crl") return runCrl(args, out);
    throw UsageError("unknown subcommand '" + command + "'");
  } catch (const UsageError& error) {
    report(err, std::string("tapestry ca: ") + error.what() + "\n" + kUsage);
    return 2;
  } catch (const std::invalid_argument& error) {
    report(err, std::string("tapestry ca: ") + error.what() + "\n" +
                    "run `tapestry ca help` for usage\n");
    return 2;
  } catch (const std::exception& error) {
    report(err, std::string("tapestry ca: error: ") + error.what() + "\n");
    return 1;
  } catch (...) {
    report(err, "tapestry ca: error: unexpected failure\n");
    return 1;
  }
}

}  // namespace tapestry::tools
