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
#include "worker/ml/member_corpus.h"
#include "worker/ml/random.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

// Databases Debian installs in the fortunes directory itself that are not English.
struct RootClaim {
  const char* file;
  const char* language;
};
constexpr RootClaim kRootClaims[] = {{"brasil", "pt"}, {"chinese", "zh"}, {"song100", "zh"}, {"tang300", "zh"}};

const char* rootClaim(const std::string& file) {
  for (const RootClaim& claim : kRootClaims)
    if (file == claim.file) return claim.language;
  return nullptr;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// The fortune databases directly in `dir`, sorted: regular files, not links,
// indexes, .u8 aliases or hidden files.
std::vector<fs::path> databasesIn(const fs::path& dir, std::error_code& ec) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_symlink(ec) || !e.is_regular_file(ec) || ext == ".dat" || ext == ".u8") continue;
    if (e.path().filename().string().front() == '.') continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// `language`'s databases: in the root, the files claimed for it (English:
// those claimed by no other language); for any other language, also its
// subdirectory's.
std::vector<fs::path> languageDatabases(const fs::path& root, const std::string& language, std::error_code& ec) {
  std::vector<fs::path> files;
  for (const fs::path& f : databasesIn(root, ec)) {
    const char* claim = rootClaim(f.filename().string());
    if (claim ? language == claim : language == "en") files.push_back(f);
  }
  std::error_code sub_ec;
  if (language != "en" && fs::is_directory(root / language, sub_ec)) {
    for (fs::path& f : databasesIn(root / language, ec)) files.push_back(std::move(f));
  }
  return files;
}

std::string missingLanguage(const std::string& fortunes_dir, const std::string& language) {
  return "no fortune database for language " + language + " under '" + fortunes_dir + "' (it holds: " +
         joinNames(fortuneLanguagesIn(fortunes_dir)) + "); install the Debian package " + fortunePackage(language) +
         " if it exists, point --fortunes at a directory laid out like " + kFortunesDir +
         ", or give the language's own text with --corpus " + language + "=PATH";
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

std::vector<std::string> fortuneLanguagesIn(const std::string& fortunes_dir) {
  std::vector<std::string> languages;
  std::error_code ec;
  const fs::path root(fortunes_dir);
  if (!fs::is_directory(root, ec)) return languages;
  for (const fs::path& f : databasesIn(root, ec)) {
    const char* claim = rootClaim(f.filename().string());
    languages.push_back(claim ? claim : "en");
  }
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code name_ec;
    if (!e.is_directory(name_ec) || name == "off" || name == "en") continue;
    try {
      checkLanguageName(name);
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (!databasesIn(e.path(), name_ec).empty()) languages.push_back(name);
  }
  std::sort(languages.begin(), languages.end());
  languages.erase(std::unique(languages.begin(), languages.end()), languages.end());
  return languages;
}

std::string fortunePackage(const std::string& language) {
  if (language == "en") return "fortunes";
  if (language == "pt") return "fortunes-br";
  return "fortunes-" + language;
}

void checkLanguageName(const std::string& language) {
  const bool ok = !language.empty() && language.size() <= 16 && std::islower(static_cast<unsigned char>(language[0])) &&
                  std::all_of(language.begin(), language.end(), [](unsigned char c) {
                    return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
                  });
  if (!ok) {
    throw std::invalid_argument("'" + language +
                                "' cannot name a language: use 1 to 16 of a-z, 0-9, '-' and '_', starting with a "
                                "letter (en, de, pt-br)");
  }
}

std::vector<std::string> readLanguageFortunes(const std::string& fortunes_dir, const std::string& language) {
  checkLanguageName(language);
  const fs::path root(fortunes_dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw std::runtime_error(missingLanguage(fortunes_dir, language));
  const std::vector<fs::path> files = languageDatabases(root, language, ec);
  if (ec) throw std::runtime_error("cannot list '" + fortunes_dir + "': " + ec.message());
  if (files.empty()) throw std::runtime_error(missingLanguage(fortunes_dir, language));
  std::vector<std::string> fortunes;
  uint64_t total = 0;
  const std::string remedy = "; reinstall " + fortunePackage(language) + " or point --fortunes elsewhere";
  for (const fs::path& file : files) {
    const std::string bytes = readFileBounded(file.string(), kMaxTextBytes, remedy);
    total += bytes.size();
    if (total > kMaxTextBytes) {
      throw std::runtime_error("the fortunes of " + language + " under '" + fortunes_dir + "' exceed " +
                               std::to_string(kMaxTextBytes) + " bytes; use --max-bytes with a smaller corpus");
    }
    for (std::string& f : parseFortunes(bytes)) fortunes.push_back(std::move(f));
  }
  if (fortunes.empty()) throw std::runtime_error(missingLanguage(fortunes_dir, language));
  return fortunes;
}

Shard buildLanguageShard(const std::string& language, const TextPartitionOptions& options) {
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    throw std::invalid_argument("val_fraction must be in [0, 1), got " + std::to_string(options.val_fraction));
  }
  const auto corpus = options.corpora.find(language);
  const std::vector<std::string> fortunes = corpus != options.corpora.end()
                                                ? readCorpusEntries(corpus->second)
                                                : readLanguageFortunes(options.fortunes_dir, language);
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

std::vector<std::string> textLanguages(const TextPartitionOptions& options) {
  std::vector<std::string> languages = options.languages;
  if (languages.empty()) {
    if (options.corpora.empty()) return fortuneLanguages();
    for (const auto& [language, path] : options.corpora) languages.push_back(language);
    return languages;
  }
  for (const auto& [language, path] : options.corpora) {
    if (std::find(languages.begin(), languages.end(), language) == languages.end()) {
      throw std::invalid_argument("the corpus of " + language + " ('" + path + "') is not among the languages (" +
                                  joinNames(languages) + "); add " + language + " to --languages");
    }
  }
  return languages;
}

void partitionText(const TextPartitionOptions& options, std::ostream& out) {
  if (options.out_dir.empty()) throw std::invalid_argument("partitionText: the output directory is empty");
  const std::vector<std::string> languages = textLanguages(options);
  std::vector<std::pair<std::string, Shard>> shards;
  for (const std::string& language : languages) shards.emplace_back(language, buildLanguageShard(language, options));
  out << "partitioned " << languages.size() << " language" << (languages.size() == 1 ? "" : "s") << " into "
      << options.out_dir << "/<lang> (seed " << options.seed << ", val-fraction " << options.val_fraction;
  if (options.max_bytes > 0) out << ", max-bytes " << options.max_bytes;
  out << ")\n" << std::setw(8) << "lang" << std::setw(14) << "train bytes" << std::setw(12) << "val bytes"
      << "  source\n";
  for (const auto& [language, shard] : shards) {
    writeShard(shard, (fs::path(options.out_dir) / language).string());
    const auto corpus = options.corpora.find(language);
    out << std::setw(8) << language << std::setw(14) << shard.train.size() << std::setw(12) << shard.val.size()
        << "  " << (corpus != options.corpora.end() ? corpus->second : fortunePackage(language) + " in " + options.fortunes_dir)
        << "\n";
  }
}

}  // namespace tapestry::worker
