#include "tools/pki/issued_index.h"

#include <openssl/err.h>

#include <sstream>
#include <stdexcept>

#include "tools/pki/ca_store.h"
#include "tools/pki/pki_files.h"

namespace tapestry::tools::detail {

std::vector<IssuedEntry> readIssued(const std::string& ca_dir) {
  const std::string path = joinPath(ca_dir, kIssuedFile);
  std::vector<IssuedEntry> entries;
  for (const auto& [number, line] : recordLines(path)) {
    std::istringstream fields(line);
    IssuedEntry entry;
    std::string extra;
    fields >> entry.serial_hex >> entry.not_after >> entry.kind >> entry.name;
    if (fields.fail() || (fields >> extra) || serialFromHex(entry.serial_hex) == nullptr) {
      ERR_clear_error();
      throw std::runtime_error(path + " line " + std::to_string(number) +
                               " is malformed: expected '<hex serial> <epoch seconds> <kind> <name>'; fix or "
                               "remove that line");
    }
    entry.serial_hex = serialToHex(serialFromHex(entry.serial_hex).get());
    entries.push_back(entry);
  }
  return entries;
}

void appendIssued(const std::string& ca_dir, const IssuedEntry& entry) {
  const std::string path = joinPath(ca_dir, kIssuedFile);
  std::string text;
  if (pathExists(path)) text = readTextFile(path, "check the permissions of the CA directory");
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += entry.serial_hex + " " + std::to_string(entry.not_after) + " " + entry.kind + " " + entry.name + "\n";
  writeFileAtomic(path, text, 0644);
}

}  // namespace tapestry::tools::detail
