#include <filesystem>
#include <stdexcept>

#include "worker/ml/dataset.h"
#include "worker/ml/file_io.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTrainImages = "train-images-idx3-ubyte";
constexpr const char* kTrainLabels = "train-labels-idx1-ubyte";
constexpr const char* kValImages = "val-images-idx3-ubyte";
constexpr const char* kValLabels = "val-labels-idx1-ubyte";
constexpr const char* kTrainText = "train.txt";
constexpr const char* kValText = "val.txt";
constexpr const char* kTextRemedy =
    "; re-create the shard with `tapestry partition text --out DIR` or put the member's text there";

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

}  // namespace

Dataset Dataset::fromText(std::string bytes) {
  Dataset d;
  d.text = std::move(bytes);
  d.is_text_ = true;
  return d;
}

Shard loadShard(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error("shard directory '" + dir + "' " +
                             (fs::exists(dir, ec) ? "is not a directory (data.shard names the directory that holds "
                                                    "the shard's files)"
                                                  : "does not exist") +
                             "; create shards with `tapestry partition --out DIR` "
                             "(images) or `tapestry partition text --out DIR` (text)");
  }
  const fs::path root(dir);
  const bool text = present(root / kTrainText) || present(root / kValText);
  const bool images = present(root / kTrainImages) || present(root / kTrainLabels) || present(root / kValImages) ||
                      present(root / kValLabels);
  if (text && images) {
    throw std::runtime_error("shard directory '" + dir + "' holds both IDX image files and train.txt/val.txt; " +
                             "a shard is one or the other, remove the files that do not belong");
  }
  Shard shard;
  if (text) {
    shard.train = Dataset::fromText(readFileBounded((root / kTrainText).string(), kMaxTextBytes, kTextRemedy));
    shard.val = Dataset::fromText(readFileBounded((root / kValText).string(), kMaxTextBytes, kTextRemedy));
    return shard;
  }
  if (!images) {
    throw std::runtime_error("shard directory '" + dir + "' holds neither " + kTrainImages + " (image shard) nor " +
                             kTrainText + " (text shard); create shards with `tapestry partition`");
  }
  shard.train = readIdx((root / kTrainImages).string(), (root / kTrainLabels).string());
  shard.val = readIdx((root / kValImages).string(), (root / kValLabels).string());
  return shard;
}

void writeShard(const Shard& shard, const std::string& dir) {
  if (shard.train.isText() != shard.val.isText()) {
    throw std::invalid_argument("writeShard: the train and val parts of a shard must both be images or both text");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create shard directory '" + dir + "': " + ec.message());
  const fs::path root(dir);
  if (shard.train.isText()) {
    for (const auto& [part, name] : {std::pair{&shard.train, kTrainText}, std::pair{&shard.val, kValText}}) {
      if (part->text.size() > kMaxTextBytes) {
        throw std::invalid_argument("writeShard: " + std::string(name) + " would hold " +
                                    std::to_string(part->text.size()) + " bytes, more than the limit of " +
                                    std::to_string(kMaxTextBytes));
      }
      writeFileAtomically((root / name).string(), nullptr, 0, part->text.data(), part->text.size());
    }
    return;
  }
  writeIdx(shard.train, (root / kTrainImages).string(), (root / kTrainLabels).string());
  writeIdx(shard.val, (root / kValImages).string(), (root / kValLabels).string());
}

}  // namespace tapestry::worker
