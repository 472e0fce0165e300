#include "worker/ml/text_corpus.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>
#include <stdexcept>

#include "worker/ml/file_io.h"
#include "worker/ml/random.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFortunesRemedy =
    "; install the Debian fortunes packages (fortunes, fortunes-de, fortunes-es, fortunes-it, fortunes-pl, "
    "fortunes-ru) or point --fortunes at a directory laid out like /usr/share/games/fortunes";

bool isBlank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

uint64_t languageStream(const std::string& language) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char c : language) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string joinFortunes(const std::vector<std::string>& fortunes, const std::vector<size_t>& indices) {
  std::string out;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i > 0) out += "%\n";
    out += fortunes[indices[i]];
  }
  return out;
}

}  // namespace

std::vector<std::string> fortuneLanguages() { return {"en", "de", "es", "it", "pl", "ru"}; }

std::vector<std::string> parseFortunes(const std::string& bytes) {
  std::vector<std::string> entries;
  std::string entry;
  auto close = [&] {
    if (!isBlank(entry)) entries.push_back(std::move(entry));
    entry.clear();
  };
  size_t begin = 0;
  while (begin < bytes.size()) {
    size_t end = bytes.find('\n', begin);
    const bool last = end == std::string::npos;
    if (last) end = bytes.size();
    const std::string_view line(bytes.data() + begin, end - begin);
    if (line == "%" || line == "%\r") {
      close();
    } else {
      entry.append(line);
      entry += '\n';
    }
    begin = last ? end : end + 1;
  }
  close();
  return entries;
}

std::vector<std::string> readLanguageFortunes(const std::string& fortunes_dir, const std::string& language) {
  const auto known = fortuneLanguages();
  if (std::find(known.begin(), known.end(), language) == known.end()) {
    throw std::invalid_argument("unknown language '" + language + "'; choose from en, de, es, it, pl, ru");
  }
  const fs::path dir = language == "en" ? fs::path(fortunes_dir) : fs::path(fortunes_dir) / language;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error("fortune directory '" + dir.string() + "' for language " + language +
                             " does not exist" + kFortunesRemedy);
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_symlink(ec) || !e.is_regular_file(ec) || ext == ".dat" || ext == ".u8") continue;
    if (e.path().filename().string().front() == '.') continue;
    files.push_back(e.path());
  }
  if (ec) throw std::runtime_error("cannot list '" + dir.string() + "': " + ec.message() + kFortunesRemedy);
  std::sort(files.begin(), files.end());
  std::vector<std::string> fortunes;
  uint64_t total = 0;
  for (const fs::path& file : files) {
    const std::string bytes = readFileBounded(file.string(), kMaxTextBytes, kFortunesRemedy);
    total += bytes.size();
    if (total > kMaxTextBytes) {
      throw std::runtime_error("the fortunes of " + language + " under '" + dir.string() + "' exceed " +
                               std::to_string(kMaxTextBytes) + " bytes; use --max-bytes with a smaller corpus");
    }
    for (std::string& f : parseFortunes(bytes)) fortunes.push_back(std::move(f));
  }
  if (fortunes.empty()) {
    throw std::runtime_error("no fortunes for language " + language + " in '" + dir.string() + "'" + kFortunesRemedy);
  }
  return fortunes;
}

Shard buildLanguageShard(const std::string& language, const TextPartitionOptions& options) {
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    throw std::invalid_argument("val_fraction must be in [0, 1), got " + std::to_string(options.val_fraction));
  }
  const std::vector<std::string> fortunes = readLanguageFortunes(options.fortunes_dir, language);
  std::vector<size_t> order(fortunes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng = seededEngine(options.seed, languageStream(language));
  shuffleInPlace(order, rng);
  if (options.max_bytes > 0) {
    uint64_t bytes = 0;
    size_t keep = 0;
    while (keep < order.size() && bytes + fortunes[order[keep]].size() + 2 <= options.max_bytes) {
      bytes += fortunes[order[keep++]].size() + 2;
    }
    order.resize(keep);
  }
  const auto val_count =
      static_cast<size_t>(std::llround(options.val_fraction * static_cast<double>(order.size())));
  if (order.size() <= val_count) {
    throw std::invalid_argument("language " + language + " keeps " + std::to_string(order.size()) +
                                " fortunes, too few for a training part" +
                                (options.max_bytes > 0 ? "; raise --max-bytes" : "; lower --val-fraction"));
  }
  std::vector<size_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(val_count));
  std::vector<size_t> train(order.begin() + static_cast<std::ptrdiff_t>(val_count), order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return Shard{Dataset::fromText(joinFortunes(fortunes, train)), Dataset::fromText(joinFortunes(fortunes, val))};
}

void partitionText(const TextPartitionOptions& options, std::ostream& out) {
  if (options.out_dir.empty()) throw std::invalid_argument("partitionText: the output directory is empty");
  const std::vector<std::string> languages = options.languages.empty() ? fortuneLanguages() : options.languages;
  std::vector<std::pair<std::string, Shard>> shards;
  for (const std::string& language : languages) shards.emplace_back(language, buildLanguageShard(language, options));
  out << "partitioned the fortunes of " << options.fortunes_dir << " into " << options.out_dir
      << "/<lang> (seed " << options.seed << ", val-fraction " << options.val_fraction;
  if (options.max_bytes > 0) out << ", max-bytes " << options.max_bytes;
  out << ")\n" << std::setw(8) << "lang" << std::setw(14) << "train bytes" << std::setw(12) << "val bytes" << "\n";
  for (const auto& [language, shard] : shards) {
    writeShard(shard, (fs::path(options.out_dir) / language).string());
    out << std::setw(8) << language << std::setw(14) << shard.train.size() << std::setw(12) << shard.val.size()
        << "\n";
  }
}

}  // namespace tapestry::worker
