// A member's own text for `tapestry partition text --corpus LANG=PATH`.
#include "worker/ml/member_corpus.h"

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

TEST(MemberCorpus, FirstNonTextByteFindsWhatIsNotUtf8) {
  EXPECT_EQ(firstNonTextByte(""), std::string::npos);
  EXPECT_EQ(firstNonTextByte("plain ascii\n"), std::string::npos);
  EXPECT_EQ(firstNonTextByte("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);  // é € 😀
  EXPECT_EQ(firstNonTextByte("caf\xe9!"), 3u);                                                   // Latin-1 é
  EXPECT_EQ(firstNonTextByte(std::string("ab\0c", 4)), 2u);
  EXPECT_EQ(firstNonTextByte("x\xc0\xaf"), 1u);          // overlong '/'
  EXPECT_EQ(firstNonTextByte("x\xe0\x80\xaf"), 1u);      // overlong, three bytes
  EXPECT_EQ(firstNonTextByte("x\xed\xa0\x80"), 1u);      // a surrogate
  EXPECT_EQ(firstNonTextByte("x\xf4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(firstNonTextByte("ok\xe2\x82"), 2u);         // cut short at the end
  EXPECT_EQ(firstNonTextByte("\x80"), 0u);               // a stray continuation byte
}

TEST(MemberCorpus, EntriesAreFortunesElseParagraphsElseLines) {
  EXPECT_EQ(splitCorpusEntries("one\n%\ntwo\nlines\n%\n"), (std::vector<std::string>{"one\n", "two\nlines\n"}));
  EXPECT_EQ(splitCorpusEntries("First paragraph,\nstill.\n\n  \nSecond.\r\n\r\nThird"),
            (std::vector<std::string>{"First paragraph,\nstill.\n", "Second.\r\n", "Third\n"}));
  EXPECT_EQ(splitCorpusEntries("a line\nanother\n\n"), (std::vector<std::string>{"a line\n", "another\n"}));
  EXPECT_TRUE(splitCorpusEntries("\n \n").empty());
}

class MemberCorpusFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tapestry-corpus-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "fr" / "b-part" / ".git");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string write(const std::string& name, const std::string& bytes) {
    std::ofstream(root_ / name, std::ios::binary | std::ios::trunc) << bytes;
    return (root_ / name).string();
  }
  std::string path(const std::string& name) const { return (root_ / name).string(); }

  fs::path root_;
};

TEST_F(MemberCorpusFiles, ReadsAFileOrADirectoryTreeInNameOrder) {
  std::string french;
  for (int i = 0; i < 10; ++i) french += "Paragraphe num\xc3\xa9ro " + std::to_string(i) + ".\n\n";
  write("fr/a.txt", french);
  write("fr/b-part/c.txt", "Dernier.\n%\nFin.\n");
  write("fr/.hidden", std::string("\0\0", 2));
  write("fr/b-part/.git/HEAD", std::string("\xff\xfe", 2));
  const auto entries = readCorpusEntries(path("fr"));
  ASSERT_EQ(entries.size(), 12u);
  EXPECT_EQ(entries.front(), "Paragraphe num\xc3\xa9ro 0.\n");
  EXPECT_EQ(entries.back(), "Fin.\n");
  EXPECT_EQ(readCorpusEntries(path("fr/a.txt")).size(), 10u);
}

TEST_F(MemberCorpusFiles, RefusesWhatIsNotTextNamingTheFileAndTheByte) {
  write("latin1.txt", "ligne un\nd\xe9j\xe0 vu\n");
  try {
    readCorpusEntries(path("latin1.txt"));
    FAIL() << "Latin-1 accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("latin1.txt' is not UTF-8 text: byte 0xE9 at offset 10 (line 2)"), std::string::npos) << what;
    EXPECT_NE(what.find("iconv"), std::string::npos) << what;
  }
  write("archive.gz", std::string("\x1f\x8b\x08\0", 4));
  EXPECT_THROW(readCorpusEntries(path("archive.gz")), std::runtime_error);
  try {
    readCorpusEntries(path("missing"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  write("blank.txt", "\n\n  \n");
  try {
    readCorpusEntries(path("blank.txt"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no text"), std::string::npos) << e.what();
  }
}

TEST_F(MemberCorpusFiles, PartitionTextTakesALanguageFromItsCorpus) {
  std::string french;
  for (int i = 0; i < 40; ++i) french += "Phrase fran\xc3\xa7" "aise " + std::to_string(i) + ".\n\n";
  write("fr/a.txt", french);
  const std::string shards = path("shards");
  std::ostringstream out, err;
  ASSERT_EQ(runPartitionCommand({"text", "--out", shards, "--corpus", "fr=" + path("fr"), "--val-fraction", "0.25"},
                                out, err),
            0)
      << err.str();
  const Shard shard = loadShard(shards + "/fr");
  EXPECT_EQ(parseFortunes(shard.val.text).size(), 10u);
  EXPECT_EQ(parseFortunes(shard.train.text).size(), 30u);
  EXPECT_FALSE(fs::exists(shards + "/en"));  // only the corpora's languages without --languages
  EXPECT_NE(out.str().find(path("fr")), std::string::npos) << out.str();

  std::ostringstream out2, err2;
  EXPECT_EQ(runPartitionCommand({"text", "--out", shards, "--languages", "de", "--corpus", "fr=" + path("fr")}, out2,
                                err2),
            2);
  EXPECT_NE(err2.str().find("add fr to --languages"), std::string::npos) << err2.str();
  std::ostringstream out3, err3;
  EXPECT_EQ(runPartitionCommand({"text", "--out", shards, "--corpus", path("fr")}, out3, err3), 2);
  EXPECT_NE(err3.str().find("--corpus expects LANG=PATH"), std::string::npos) << err3.str();
  std::ostringstream out4, err4;
  EXPECT_EQ(runPartitionCommand({"text", "--out", shards, "--corpus", "fr=" + path("fr"), "--corpus", "fr=x"}, out4,
                                err4),
            2);
  EXPECT_NE(err4.str().find("gives fr twice"), std::string::npos) << err4.str();
  write("bad.txt", "caf\xe9\n");
  std::ostringstream out5, err5;
  EXPECT_EQ(runPartitionCommand({"text", "--out", path("shards2"), "--corpus", "fr=" + path("bad.txt")}, out5, err5), 1);
  EXPECT_NE(err5.str().find("is not UTF-8 text"), std::string::npos) << err5.str();
  EXPECT_FALSE(fs::exists(path("shards2")));  // nothing half-written
}

}  // namespace
}  // namespace tapestry::worker
