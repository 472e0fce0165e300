// Seeded IID and Dirichlet splits, train/val shards and `tapestry partition`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>

#include "worker/ml/partition.h"

namespace tapestry::worker {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> balancedLabels(size_t n, uint64_t seed) {
  std::vector<uint8_t> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  std::shuffle(labels.begin(), labels.end(), std::mt19937_64(seed));
  return labels;
}

void expectEveryIndexOnce(const std::vector<std::vector<size_t>>& parts, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& part : parts) {
    for (const size_t i : part) {
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<std::ptrdiff_t>(n));
}

// Mean over workers of the largest class's share of the worker's samples.
double meanMaxClassShare(const std::vector<uint8_t>& labels, const std::vector<std::vector<size_t>>& parts) {
  double total = 0;
  for (const auto& part : parts) {
    std::vector<size_t> counts(10, 0);
    for (const size_t i : part) ++counts[labels[i]];
    total += static_cast<double>(*std::max_element(counts.begin(), counts.end())) / static_cast<double>(part.size());
  }
  return total / static_cast<double>(parts.size());
}

std::string invalidArgument(const std::vector<uint8_t>& labels, const PartitionOptions& options) {
  try {
    partitionIndices(labels, 10, options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(Partition, EveryIndexExactlyOnce) {
  const auto labels = balancedLabels(3001, 1);
  for (const auto scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet}) {
    for (const size_t workers : {1, 3, 10}) {
      PartitionOptions options;
      options.scheme = scheme;
      options.workers = workers;
      options.alpha = 0.3;
      const auto parts = partitionIndices(labels, 10, options);
      ASSERT_EQ(parts.size(), workers);
      expectEveryIndexOnce(parts, labels.size());
      for (const auto& part : parts) {
        EXPECT_GE(part.size(), options.min_per_worker);
        EXPECT_TRUE(std::is_sorted(part.begin(), part.end()));
      }
    }
  }
}

TEST(Partition, IidIsAnEqualBalancedSplit) {
  const auto labels = balancedLabels(5003, 2);
  PartitionOptions options;
  options.scheme = PartitionScheme::kIid;
  options.workers = 5;
  const auto parts = partitionIndices(labels, 10, options);
  for (const auto& part : parts) EXPECT_TRUE(part.size() == 1000 || part.size() == 1001) << part.size();
  EXPECT_LT(meanMaxClassShare(labels, parts), 0.15);
}

TEST(Partition, SmallAlphaDirichletIsSkewed) {
  const auto labels = balancedLabels(5000, 3);
  PartitionOptions options;
  options.workers = 5;
  options.alpha = 0.1;
  const double skewed = meanMaxClassShare(labels, partitionIndices(labels, 10, options));
  options.alpha = 1000;
  const double near_iid = meanMaxClassShare(labels, partitionIndices(labels, 10, options));
  EXPECT_GT(skewed, 0.4);
  EXPECT_LT(near_iid, 0.15);
}

TEST(Partition, SeededAndDeterministic) {
  const auto labels = balancedLabels(2000, 4);
  for (const auto scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet}) {
    PartitionOptions options;
    options.scheme = scheme;
    options.seed = 42;
    const auto a = partitionIndices(labels, 10, options);
    EXPECT_EQ(a, partitionIndices(labels, 10, options));
    options.seed = 43;
    EXPECT_NE(a, partitionIndices(labels, 10, options));
  }
}

TEST(Partition, TinyAlphaStillPlacesEverySample) {
  const auto labels = balancedLabels(1000, 5);
  PartitionOptions options;
  options.workers = 4;
  options.alpha = 1e-3;
  options.min_per_worker = 1;
  expectEveryIndexOnce(partitionIndices(labels, 10, options), labels.size());
}

TEST(Partition, ErrorsSayWhatIsWrong) {
  const auto labels = balancedLabels(20, 6);
  PartitionOptions options;
  options.min_per_worker = 1;
  options.workers = 0;
  EXPECT_NE(invalidArgument(labels, options).find("workers must be at least 1"), std::string::npos);
  options.workers = 21;
  EXPECT_NE(invalidArgument(labels, options).find("cannot split 20 samples over 21 workers"), std::string::npos);
  options.workers = 2;
  options.alpha = 0;
  EXPECT_NE(invalidArgument(labels, options).find("alpha must be a positive number"), std::string::npos);
  options.alpha = -1;
  EXPECT_NE(invalidArgument(labels, options).find("alpha must be a positive number"), std::string::npos);
  options.alpha = 0.5;
  options.min_per_worker = 11;
  EXPECT_NE(invalidArgument(labels, options).find("lower min_per_worker"), std::string::npos);
  options.min_per_worker = 1;
  auto bad = labels;
  bad[3] = 12;
  EXPECT_NE(invalidArgument(bad, options).find("sample 3 has label 12"), std::string::npos);
}

TEST(Partition, SplitTrainValIsSeededAndDisjoint) {
  ImageDataset data;
  data.labels = balancedLabels(100, 7);
  data.images.resize(100 * 784);
  for (size_t i = 0; i < 100; ++i) data.images[i * 784] = static_cast<uint8_t>(i);  // tag each image
  std::vector<size_t> indices;
  for (size_t i = 0; i < 100; i += 2) indices.push_back(i);
  const Shard a = splitTrainVal(data, indices, 0.2, 9);
  EXPECT_EQ(a.train.size(), 40u);
  EXPECT_EQ(a.val.size(), 10u);
  std::vector<size_t> tags;
  for (const ImageDataset* part : {&a.train, &a.val}) {
    for (size_t i = 0; i < part->size(); ++i) tags.push_back(part->images[i * 784]);
  }
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, indices);
  EXPECT_EQ(splitTrainVal(data, indices, 0.2, 9).val.images, a.val.images);
  EXPECT_NE(splitTrainVal(data, indices, 0.2, 10).val.images, a.val.images);
  EXPECT_THROW(splitTrainVal(data, indices, 1.0, 9), std::invalid_argument);
}

class PartitionCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tapestry-partition-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "data");
    data_.labels = balancedLabels(400, 8);
    data_.images.assign(400 * 784, 0);
    for (size_t i = 0; i < 400; ++i) data_.images[i * 784 + 1] = static_cast<uint8_t>(i % 256);
    writeIdx(data_, (root_ / "data/train-images-idx3-ubyte").string(),
             (root_ / "data/train-labels-idx1-ubyte").string());
  }
  void TearDown() override { fs::remove_all(root_); }

  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runPartitionCommand(args, out_, err_);
  }

  fs::path root_;
  ImageDataset data_;
  std::ostringstream out_, err_;
};

TEST_F(PartitionCommand, WritesShardsAndPrintsHistograms) {
  const std::string out = (root_ / "shards").string();
  ASSERT_EQ(run({"--data", (root_ / "data").string(), "--out", out, "--scheme", "dirichlet", "--alpha", "0.5",
                 "--workers", "3", "--seed", "5", "--val-fraction=0.25", "--limit", "300"}),
            0)
      << err_.str();
  std::vector<size_t> counts(10, 0);
  size_t total = 0;
  for (int k = 0; k < 3; ++k) {
    const Shard shard = loadShard(out + "/worker-" + std::to_string(k));
    EXPECT_GT(shard.val.size(), 0u);
    for (const ImageDataset* part : {&shard.train, &shard.val}) {
      const auto h = labelHistogram(*part);
      for (size_t c = 0; c < 10; ++c) counts[c] += h[c];
      total += part->size();
    }
  }
  EXPECT_EQ(total, 300u);
  std::vector<uint8_t> first(data_.labels.begin(), data_.labels.begin() + 300);
  ImageDataset limited;
  limited.labels = first;
  EXPECT_EQ(counts, labelHistogram(limited));
  const std::string printed = out_.str();
  EXPECT_NE(printed.find("worker"), std::string::npos);
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 5) << printed;  // summary, header, 3 rows
}

TEST_F(PartitionCommand, ShardsOfAnEarlierPartitionOverMoreWorkersAreNotLeftBeside) {
  const std::string out = (root_ / "shards").string();
  const std::string data = (root_ / "data").string();
  ASSERT_EQ(run({"--data", data, "--out", out, "--workers", "4"}), 0) << err_.str();
  ASSERT_EQ(run({"--data", data, "--out", out, "--workers", "4", "--seed", "2"}), 0) << "the same workers: rewritten";
  EXPECT_EQ(run({"--data", data, "--out", out, "--workers", "2"}), 1);
  EXPECT_NE(err_.str().find("holds shards of an earlier partition over more workers (worker-2, worker-3)"),
            std::string::npos)
      << err_.str();
  fs::remove_all(out);
  EXPECT_EQ(run({"--data", data, "--out", out, "--workers", "2"}), 0) << err_.str();
}

TEST_F(PartitionCommand, UsageErrorsReturnTwo) {
  EXPECT_EQ(run({"--workers", "3"}), 2);
  EXPECT_NE(err_.str().find("--out DIR is required"), std::string::npos);
  EXPECT_NE(err_.str().find("usage: tapestry partition"), std::string::npos);
  EXPECT_EQ(run({"--out", "x", "--scheme", "zipf"}), 2);
  EXPECT_NE(err_.str().find("use \"iid\", \"dirichlet\" or \"labels\""), std::string::npos);
  EXPECT_EQ(run({"--out", "x", "--workers", "-3"}), 2);
  EXPECT_NE(err_.str().find("--workers takes a whole number"), std::string::npos);
  EXPECT_EQ(run({"--out", "x", "--alpha", "0"}), 2);
  EXPECT_EQ(run({"--out", "x", "--bogus", "1"}), 2);
  EXPECT_NE(err_.str().find("unknown option --bogus"), std::string::npos);
  EXPECT_EQ(run({"--out"}), 2);
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_NE(out_.str().find("usage: tapestry partition"), std::string::npos);
}

TEST_F(PartitionCommand, RuntimeErrorsReturnOne) {
  EXPECT_EQ(run({"--data", (root_ / "nowhere").string(), "--out", (root_ / "o").string()}), 1);
  EXPECT_NE(err_.str().find("dataset-fashion-mnist"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"--data", (root_ / "data").string(), "--out", (root_ / "o").string(), "--workers", "500"}), 1);
  EXPECT_NE(err_.str().find("cannot split 400 samples over 500 workers"), std::string::npos) << err_.str();
}

}  // namespace
}  // namespace tapestry::worker
