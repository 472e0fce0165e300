// `tapestry partition text`: one text shard per language from the fortunes.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <ostream>
#include <stdexcept>

#include "common/cli_args.h"
#include "worker/ml/text_corpus.h"

namespace tapestry::worker {
namespace {

constexpr const char* kUsage =
    "usage: tapestry partition text --out DIR [--fortunes DIR] [--languages LIST|all] [--corpus LANG=PATH]...\n"
    "                               [--val-fraction F] [--seed S] [--max-bytes N]\n"
    "  --out DIR           writes DIR/<lang>/train.txt and DIR/<lang>/val.txt, one shard per language\n"
    "  --fortunes DIR      Debian fortune databases (default /usr/share/games/fortunes; English files\n"
    "                      in DIR itself, most others in DIR/<lang>; fortunes-br is pt, fortunes-zh zh)\n"
    "  --languages LIST    comma-separated language names (default en,de,es,it,pl,ru, or the languages\n"
    "                      of the --corpus options); all: every language DIR holds\n"
    "  --corpus LANG=PATH  LANG's text from PATH instead of the fortunes: a UTF-8 file or a directory\n"
    "                      of them, cut at lines holding only %, else at blank lines; repeatable\n"
    "  --val-fraction F    share of each language's fortunes held out for validation, in [0, 1) (default 0.1)\n"
    "  --seed S            seed of the split (default 1)\n"
    "  --max-bytes N       keep at most N bytes of fortunes per language, chosen at random (default: all)\n";

using common::UsageError;

uint64_t parseCount(const std::string& flag, const std::string& text) { return common::parseCountArg(flag, text); }

std::vector<std::string> splitLanguages(const std::string& list, const std::string& fortunes_dir) {
  if (list == "all") {
    std::vector<std::string> all = fortuneLanguagesIn(fortunes_dir);
    if (all.empty()) {
      throw UsageError("--languages all: '" + fortunes_dir + "' holds no fortune database; install fortunes (and " +
                       "fortunes-de, ...) or point --fortunes at such a directory");
    }
    return all;
  }
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t comma = std::min(list.find(',', begin), list.size());
    const std::string language = list.substr(begin, comma - begin);
    try {
      checkLanguageName(language);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--languages: ") + e.what());
    }
    if (std::find(out.begin(), out.end(), language) != out.end()) {
      throw UsageError("--languages names " + language + " twice");
    }
    out.push_back(language);
    begin = comma + 1;
  }
  return out;
}

void addCorpus(const std::string& value, std::map<std::string, std::string>& corpora) {
  const size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
    throw UsageError("--corpus expects LANG=PATH (for example --corpus fr=/data/french.txt), got '" + value + "'");
  }
  const std::string language = value.substr(0, eq);
  try {
    checkLanguageName(language);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--corpus: ") + e.what());
  }
  if (!corpora.emplace(language, value.substr(eq + 1)).second) {
    throw UsageError("--corpus gives " + language + " twice");
  }
}

TextPartitionOptions parseOptions(const std::vector<std::string>& args) {
  static const char* const kKnown[] = {"out",  "fortunes",  "languages", "val-fraction",
                                       "seed", "max-bytes", "corpus"};
  std::map<std::string, std::string> flags;
  TextPartitionOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0) throw UsageError("unexpected argument '" + args[i] + "'");
    std::string name = args[i].substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError("--" + name + " needs a value");
    }
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      throw UsageError("unknown option --" + name);
    }
    if (name == "corpus") {
      addCorpus(value, options.corpora);
      continue;
    }
    if (!flags.emplace(name, value).second) throw UsageError("--" + name + " given twice");
  }
  if (flags.count("out") == 0 || flags["out"].empty()) throw UsageError("--out DIR is required");
  options.out_dir = flags["out"];
  if (flags.count("fortunes")) options.fortunes_dir = flags["fortunes"];
  if (flags.count("languages")) options.languages = splitLanguages(flags["languages"], options.fortunes_dir);
  if (flags.count("seed")) options.seed = parseCount("--seed", flags["seed"]);
  if (flags.count("max-bytes")) {
    options.max_bytes = parseCount("--max-bytes", flags["max-bytes"]);
    if (options.max_bytes == 0) throw UsageError("--max-bytes must be at least 1");
  }
  if (flags.count("val-fraction")) {
    const std::string& text = flags["val-fraction"];
    char* end = nullptr;
    options.val_fraction = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(options.val_fraction >= 0 && options.val_fraction < 1)) {
      throw UsageError("--val-fraction expects a number in [0, 1), got '" + text + "'");
    }
  }
  try {
    textLanguages(options);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  return options;
}

}  // namespace

int runPartitionTextCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    out << kUsage;
    return 0;
  }
  TextPartitionOptions options;
  try {
    options = parseOptions(args);
  } catch (const UsageError& e) {
    err << "tapestry partition text: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    partitionText(options, out);
    return 0;
  } catch (const std::exception& e) {
    err << "tapestry partition text: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tapestry::worker
