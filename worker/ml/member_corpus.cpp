#include "worker/ml/member_corpus.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "worker/ml/dataset.h"
#include "worker/ml/file_io.h"
#include "worker/ml/text_corpus.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCorpusRemedy = "; give --corpus LANG=PATH a UTF-8 text file or a directory of them";

bool isContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Lines of `text` without their "\n" (a "\r" stays); a last line without one counts.
std::vector<std::string_view> lines(const std::string& text) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    out.emplace_back(text.data() + begin, end - begin);
    begin = end + 1;
  }
  return out;
}

std::string describeBadByte(const std::string& file, const std::string& bytes, size_t at) {
  const auto line = 1 + std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(bytes[at]));
  if (bytes[at] == '\0') {
    return "'" + file + "' holds a NUL byte at offset " + std::to_string(at) + " (line " + std::to_string(line) +
           "): it is not a text file (compressed, a document format or binary); give --corpus plain UTF-8 text";
  }
  return "'" + file + "' is not UTF-8 text: byte " + hex + " at offset " + std::to_string(at) + " (line " +
         std::to_string(line) + "); convert it first (for example iconv -f LATIN1 -t UTF-8 '" + file +
         "' > converted.txt, naming its real encoding) or leave it out of the corpus";
}

std::vector<fs::path> corpusFiles(const fs::path& root) {
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) {
    throw std::runtime_error("corpus '" + root.string() + "' does not exist" + kCorpusRemedy);
  }
  if (fs::is_regular_file(status)) return {root};
  if (!fs::is_directory(status)) {
    throw std::runtime_error("corpus '" + root.string() + "' is neither a file nor a directory" + kCorpusRemedy);
  }
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.front() == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) throw std::runtime_error("cannot list corpus '" + root.string() + "': " + ec.message() + kCorpusRemedy);
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

bool isBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

size_t firstNonTextByte(const std::string& bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (!isContinuation(p[i + k])) return i;
    i += len;
  }
  return std::string::npos;
}

std::vector<std::string> splitCorpusEntries(const std::string& text) {
  const std::vector<std::string_view> all = lines(text);
  if (std::any_of(all.begin(), all.end(), [](std::string_view l) { return l == "%" || l == "%\r"; })) {
    return parseFortunes(text);
  }
  std::vector<std::string> entries;
  std::string entry;
  for (const std::string_view line : all) {
    if (isBlank(line)) {
      if (!entry.empty()) entries.push_back(std::move(entry));
      entry.clear();
      continue;
    }
    entry.append(line);
    entry += '\n';
  }
  if (!entry.empty()) entries.push_back(std::move(entry));
  if (entries.size() >= 2) return entries;
  entries.clear();  // one paragraph: its lines are the entries
  for (const std::string_view line : all)
    if (!isBlank(line)) entries.push_back(std::string(line) + "\n");
  return entries;
}

std::vector<std::string> readCorpusEntries(const std::string& path) {
  std::vector<std::string> entries;
  uint64_t total = 0;
  for (const fs::path& file : corpusFiles(path)) {
    const std::string bytes = readFileBounded(file.string(), kMaxTextBytes, kCorpusRemedy);
    total += bytes.size();
    if (total > kMaxTextBytes) {
      throw std::runtime_error("corpus '" + path + "' holds more than " + std::to_string(kMaxTextBytes) +
                               " bytes of text, the most one shard takes; point --corpus at a part of it");
    }
    const size_t bad = firstNonTextByte(bytes);
    if (bad != std::string::npos) throw std::runtime_error(describeBadByte(file.string(), bytes, bad));
    for (std::string& e : splitCorpusEntries(bytes)) entries.push_back(std::move(e));
  }
  if (entries.empty()) throw std::runtime_error("corpus '" + path + "' holds no text" + kCorpusRemedy);
  return entries;
}

}  // namespace tapestry::worker
