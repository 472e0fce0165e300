#pragma once
// Per-language text shards from Debian's fortune databases (packages
// fortunes, fortunes-de, -es, -it, -pl, -ru, and any other language's):
// most languages lie in <dir>/<lang>/, English in the fortunes directory
// itself, where fortunes-br (pt) and fortunes-zh (zh) also put their files,
// which are therefore not English. A database is a text file whose entries
// are separated by lines holding only "%". Index files (*.dat), the *.u8
// aliases and symbolic links (the English directory links to the Italian
// files) are skipped, as is off/ (the offensive sets). A member's own text
// (`--corpus LANG=PATH`, worker/ml/member_corpus.h) can stand in for the
// fortunes of any language. Pure functions of (files, options).
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "worker/ml/dataset.h"

namespace tapestry::worker {

// Where the Debian fortunes packages install their databases.
inline constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

struct TextPartitionOptions {
  std::string fortunes_dir = kFortunesDir;
  std::vector<std::string> languages;  // empty: fortuneLanguages()
  double val_fraction = 0.1;           // of each language's fortunes, in [0, 1)
  uint64_t seed = 1;
  uint64_t max_bytes = 0;  // per language, train + val; 0 = no cap
  std::string out_dir;
  std::map<std::string, std::string> corpora;  // language -> its own text (file or directory), instead of fortunes
};

// The default languages of `partition text` and the text benchmark: en, de, es, it, pl, ru.
std::vector<std::string> fortuneLanguages();

// Every language `fortunes_dir` holds a database for, sorted.
std::vector<std::string> fortuneLanguagesIn(const std::string& fortunes_dir);

// The Debian package with a language's fortunes: fortunes (en), fortunes-br
// (pt), fortunes-zh (zh), otherwise fortunes-<language>.
std::string fortunePackage(const std::string& language);

// Throws std::invalid_argument unless `language` can name a shard: 1 to 16
// of a-z, 0-9, '-' and '_', starting with a letter ("en", "pt-br", "zh").
void checkLanguageName(const std::string& language);

// The entries of one fortune database, without their "%" separator lines,
// each ending in "\n"; empty entries are dropped. "\r\n" line ends are kept.
std::vector<std::string> parseFortunes(const std::string& bytes);

// Every fortune of `language`: its database files in name order, entries in
// file order. Throws std::runtime_error naming the directory, the package to
// install and the languages the directory does hold if it holds none of
// `language`'s, std::invalid_argument for a malformed language name.
std::vector<std::string> readLanguageFortunes(const std::string& fortunes_dir, const std::string& language);

// One language's shard: its fortunes (or the entries of its corpus) shuffled with a seed derived from
// (seed, language); with max_bytes, the shuffled prefix that fits; then the
// first round(val_fraction * n) of those to val, the rest to train, each part
// in its original order and written as a fortune database ("%" lines between
// entries). Throws std::invalid_argument for a bad option or a language left
// with no training fortune.
Shard buildLanguageShard(const std::string& language, const TextPartitionOptions& options);

// The languages a partition makes shards for: options.languages; when empty,
// the languages of the corpora, or fortuneLanguages() without any. Throws
// std::invalid_argument for a corpus whose language is not among them.
std::vector<std::string> textLanguages(const TextPartitionOptions& options);

// Writes out_dir/<lang>/{train.txt,val.txt} for every language and prints a
// table of fortunes and bytes per language to `out`.
void partitionText(const TextPartitionOptions& options, std::ostream& out);

// `tapestry partition text ...` (`args` after "text"): returns 0, 2 (usage)
// or 1 (error, with its message); never throws.
int runPartitionTextCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tapestry::worker
