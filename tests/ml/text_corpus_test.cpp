// Fortune databases and `tapestry partition text`, on a fake fortunes tree.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "worker/ml/partition.h"
#include "worker/ml/text_corpus.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

class FortunesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tapestry-fortunes-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    // English in the root, German and Italian in subdirectories, with the
    // index files, .u8 aliases, symlinks and off/ of the Debian packages.
    fs::create_directories(root_ / "fortunes" / "de");
    fs::create_directories(root_ / "fortunes" / "it");
    fs::create_directories(root_ / "fortunes" / "off");
    std::string english, german;
    for (int i = 0; i < 20; ++i) english += "English fortune number " + std::to_string(i) + ".\n%\n";
    for (int i = 0; i < 10; ++i) german += "Deutscher Spruch " + std::to_string(i) + " \xc3\xa4\xc3\xb6\xc3\xbc.\n%\n";
    write("fortunes/zen", english);
    write("fortunes/zen.dat", std::string(24, '\0'));
    fs::create_symlink("zen", root_ / "fortunes" / "zen.u8");
    write("fortunes/de/witze", german);
    write("fortunes/de/witze.u8", "");
    write("fortunes/it/leggi", "Legge di Murphy.\n%\n");
    fs::create_symlink("it/leggi", root_ / "fortunes" / "leggi");
    write("fortunes/off/rude", "Not to be included.\n%\n");
    // fortunes-br and fortunes-zh put their databases in the root as well.
    write("fortunes/brasil", "Quem tudo quer, tudo perde.\n%\nDevagar se vai ao longe.\n%\n");
    write("fortunes/tang300", "\xe5\xba\x8a\xe5\x89\x8d\xe6\x98\x8e\xe6\x9c\x88\xe5\x85\x89\n%\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(root_ / name, std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string fortunes() const { return (root_ / "fortunes").string(); }
  std::string shardsDir() const { return (root_ / "shards").string(); }

  fs::path root_;
};

TEST(Fortunes, ParsesEntriesBetweenPercentLines) {
  const auto entries = parseFortunes("one\ntwo\n%\n\n%\r\nthree\r\n%\nlast line without newline");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0], "one\ntwo\n");
  EXPECT_EQ(entries[1], "three\r\n");
  EXPECT_EQ(entries[2], "last line without newline\n");
  EXPECT_TRUE(parseFortunes("%\n%\n  \n%").empty());
  EXPECT_EQ(fortuneLanguages(), (std::vector<std::string>{"en", "de", "es", "it", "pl", "ru"}));
}

TEST_F(FortunesTest, ReadsDatabasesSkippingIndexesLinksAndSubdirectories) {
  const auto english = readLanguageFortunes(fortunes(), "en");
  // Not the Italian file linked from the root, off/, nor the Portuguese and Chinese files in the root.
  EXPECT_EQ(english.size(), 20u);
  EXPECT_EQ(readLanguageFortunes(fortunes(), "de").size(), 10u);
  EXPECT_EQ(readLanguageFortunes(fortunes(), "it"), std::vector<std::string>{"Legge di Murphy.\n"});
  EXPECT_EQ(readLanguageFortunes(fortunes(), "pt").size(), 2u);
  EXPECT_EQ(readLanguageFortunes(fortunes(), "zh").size(), 1u);
  EXPECT_EQ(fortuneLanguagesIn(fortunes()), (std::vector<std::string>{"de", "en", "it", "pt", "zh"}));
  EXPECT_TRUE(fortuneLanguagesIn((root_ / "nowhere").string()).empty());
  EXPECT_THROW(readLanguageFortunes(fortunes(), "../de"), std::invalid_argument);
  EXPECT_THROW(readLanguageFortunes(fortunes(), "off/"), std::invalid_argument);
  try {
    readLanguageFortunes(fortunes(), "cs");
    FAIL() << "no Czech fortunes in the fake tree";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no fortune database for language cs"), std::string::npos) << what;
    EXPECT_NE(what.find("it holds: de, en, it, pt, zh"), std::string::npos) << what;
    EXPECT_NE(what.find("fortunes-cs"), std::string::npos) << what;
    EXPECT_NE(what.find("--corpus cs=PATH"), std::string::npos) << what;
  }
  EXPECT_EQ(fortunePackage("en"), "fortunes");
  EXPECT_EQ(fortunePackage("pt"), "fortunes-br");
  EXPECT_EQ(fortunePackage("ga"), "fortunes-ga");
}

TEST_F(FortunesTest, AnyLanguageTheDirectoryHoldsIsPartitioned) {
  fs::create_directories(root_ / "fortunes" / "cs");
  write("fortunes/cs/citace", "Kdo jinému jámu kope, sám do ní padá.\n%\nBez práce nejsou koláče.\n%\n");
  std::ostringstream out, err;
  ASSERT_EQ(runPartitionCommand({"text", "--out", shardsDir(), "--fortunes", fortunes(), "--languages", "all",
                                 "--val-fraction", "0"},
                                out, err),
            0)
      << err.str();
  for (const char* language : {"cs", "de", "en", "it", "pt", "zh"}) {
    EXPECT_TRUE(fs::exists(fs::path(shardsDir()) / language / "train.txt")) << language;
  }
  EXPECT_NE(loadShard(shardsDir() + "/cs").train.text.find("koláče"), std::string::npos);
  EXPECT_EQ(loadShard(shardsDir() + "/en").train.text.find("Quem tudo"), std::string::npos);
  EXPECT_NE(out.str().find("fortunes-br in"), std::string::npos) << out.str();
}

TEST_F(FortunesTest, SplitIsByWholeFortunesSeededAndCapped) {
  TextPartitionOptions options;
  options.fortunes_dir = fortunes();
  options.val_fraction = 0.25;
  options.seed = 3;
  const Shard a = buildLanguageShard("en", options);
  EXPECT_EQ(parseFortunes(a.val.text).size(), 5u);
  EXPECT_EQ(parseFortunes(a.train.text).size(), 15u);
  for (const std::string& held_out : parseFortunes(a.val.text)) {
    EXPECT_EQ(a.train.text.find(held_out), std::string::npos) << held_out;
  }
  EXPECT_EQ(buildLanguageShard("en", options).val.text, a.val.text);
  options.seed = 4;
  EXPECT_NE(buildLanguageShard("en", options).val.text, a.val.text);

  options.max_bytes = 200;
  const Shard capped = buildLanguageShard("en", options);
  EXPECT_LE(capped.train.size() + capped.val.size(), 200u);
  EXPECT_GT(capped.train.size(), 0u);
  options.max_bytes = 5;
  EXPECT_THROW(buildLanguageShard("en", options), std::invalid_argument);
}

TEST_F(FortunesTest, PartitionTextCommandWritesOneShardPerLanguage) {
  std::ostringstream out, err;
  ASSERT_EQ(runPartitionCommand({"text", "--out", shardsDir(), "--fortunes", fortunes(), "--languages", "en,de",
                                 "--val-fraction", "0.2", "--seed", "9"},
                                out, err),
            0)
      << err.str();
  for (const char* language : {"en", "de"}) {
    const Shard shard = loadShard(shardsDir() + "/" + language);
    EXPECT_TRUE(shard.train.isText());
    EXPECT_GT(shard.val.size(), 0u);
    EXPECT_NE(out.str().find(std::string(language) + " "), std::string::npos) << out.str();
  }
  EXPECT_NE(loadShard(shardsDir() + "/de").train.text.find("Deutscher Spruch"), std::string::npos);
  EXPECT_FALSE(fs::exists(shardsDir() + "/it"));
  EXPECT_NE(out.str().find("train bytes"), std::string::npos);

  std::ostringstream out2, err2;
  EXPECT_EQ(runPartitionCommand({"text", "--out", shardsDir(), "--languages", "en,Fr"}, out2, err2), 2);
  EXPECT_NE(err2.str().find("'Fr' cannot name a language"), std::string::npos) << err2.str();
  std::ostringstream out3, err3;
  EXPECT_EQ(runPartitionCommand({"text", "--out", shardsDir(), "--fortunes", fortunes(), "--languages", "ru"}, out3, err3),
            1);
  EXPECT_NE(err3.str().find("no fortune database for language ru"), std::string::npos) << err3.str();
  EXPECT_NE(err3.str().find("install the Debian package fortunes-ru"), std::string::npos) << err3.str();
}

}  // namespace
}  // namespace tapestry::worker
