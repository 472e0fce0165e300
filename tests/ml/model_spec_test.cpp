// Model specs as they appear in configs, and the model fingerprints that the
// coordinator compares.
#include <gtest/gtest.h>

#include <stdexcept>

#include "worker/ml/model.h"

namespace tapestry::worker {
namespace {

std::string specError(const nlohmann::json& j) {
  try {
    ModelSpec::fromJson(j);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(ModelSpec, JsonRoundTrip) {
  ModelSpec mlp;
  mlp.name = "mlp";
  mlp.hidden = 64;
  const ModelSpec back = ModelSpec::fromJson(mlp.toJson());
  EXPECT_EQ(back.name, "mlp");
  EXPECT_EQ(back.hidden, 64);
  EXPECT_EQ(ModelSpec::fromJson(ModelSpec{}.toJson()).name, "cnn");
  EXPECT_EQ(ModelSpec::fromJson(nlohmann::json::parse(R"({"name": "mlp"})")).hidden, 200);
}

TEST(ModelSpec, StrictParsing) {
  EXPECT_NE(specError({{"name", "resnet"}}).find("use \"mlp\" or \"cnn\""), std::string::npos);
  EXPECT_NE(specError({{"name", "mlp"}, {"hiden", 3}}).find("unknown key model.hiden"), std::string::npos);
  EXPECT_NE(specError({{"name", "mlp"}, {"hidden", 0}}).find("model.hidden must be a positive integer"),
            std::string::npos);
  EXPECT_NE(specError({{"name", "mlp"}, {"hidden", "big"}}).find("model.hidden"), std::string::npos);
  EXPECT_NE(specError({{"name", 3}}).find("model.name must be a string"), std::string::npos);
  EXPECT_NE(specError(nlohmann::json::array()).find("JSON object"), std::string::npos);
}

TEST(ModelSpec, ParameterCounts) {
  ModelSpec mlp;
  mlp.name = "mlp";
  EXPECT_EQ(modelParameterCount(mlp), 784u * 200 + 200 + 200 * 10 + 10);
  EXPECT_EQ(modelParameterCount(ModelSpec{}), (6u * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 120 + 120) +
                                                  (120 * 84 + 84) + (84 * 10 + 10));
}

TEST(ModelSpec, FingerprintsAreStableAndDistinguishModels) {
  ModelSpec mlp;
  mlp.name = "mlp";
  ModelSpec wide = mlp;
  wide.hidden = 300;
  const std::string cnn_print = modelFingerprint(ModelSpec{});
  const std::string mlp_print = modelFingerprint(mlp);
  EXPECT_EQ(cnn_print.size(), 16u);
  EXPECT_EQ(cnn_print.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(cnn_print, mlp_print);
  EXPECT_NE(mlp_print, modelFingerprint(wide));
  EXPECT_EQ(cnn_print, modelFingerprint(ModelSpec{}));
  // Pinned: a change here breaks federations with workers of older builds.
  // cnn hashes "0.weight:6x1x5x5:float;0.bias:6:float;3.weight:16x6x5x5:float;...".
  EXPECT_EQ(cnn_print, "dc6564313a94047d");
  EXPECT_EQ(mlp_print, "ff882053aff9ff30");
}

}  // namespace
}  // namespace tapestry::worker
