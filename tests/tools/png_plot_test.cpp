// The PNG chart writer: a file that any PNG reader accepts (signature, IHDR,
// IDAT, IEND, correct CRCs), of the requested size, with the data drawn.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tools/png_plot.h"

namespace tapestry::tools {
namespace {

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

struct Chunk {
  std::string type;
  std::vector<uint8_t> data;
};

// Splits a PNG into its chunks, checking each CRC.
std::vector<Chunk> readChunks(const std::vector<uint8_t>& png) {
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  EXPECT_TRUE(png.size() > 8 && std::equal(signature, signature + 8, png.begin()));
  std::vector<Chunk> chunks;
  for (size_t at = 8; at + 12 <= png.size();) {
    uint32_t length = be32(png, at);
    EXPECT_LE(at + 12 + length, png.size());
    if (at + 12 + length > png.size()) break;
    Chunk c{std::string(png.begin() + at + 4, png.begin() + at + 8),
            std::vector<uint8_t>(png.begin() + at + 8, png.begin() + at + 8 + length)};
    uint32_t crc = static_cast<uint32_t>(crc32(0, png.data() + at + 4, length + 4));
    EXPECT_EQ(crc, be32(png, at + 8 + length)) << "CRC of chunk " << c.type;
    chunks.push_back(std::move(c));
    at += 12 + length;
  }
  return chunks;
}

LineChart sampleChart() {
  LineChart chart;
  chart.title = "Test accuracy vs round";
  chart.x_label = "round";
  chart.y_label = "accuracy";
  chart.width = 640;
  chart.height = 400;
  PlotSeries rising{"fedavg", {}, false}, flat{"centralised", {}, true};
  for (int r = 0; r <= 20; ++r) {
    rising.points.emplace_back(r, 0.1 + 0.8 * (1 - std::exp(-r / 5.0)));
    flat.points.emplace_back(r, 0.88);
  }
  chart.series = {rising, flat};
  return chart;
}

TEST(PngPlot, WritesAValidPngWithTheDataDrawnInThePlottingArea) {
  LineChart chart = sampleChart();
  std::string path = (std::filesystem::temp_directory_path() / "tapestry-png-plot-test.png").string();
  writeLineChart(chart, path);
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);

  auto chunks = readChunks(png);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front().type, "IHDR");
  EXPECT_EQ(chunks.back().type, "IEND");
  EXPECT_TRUE(chunks.back().data.empty());
  const auto& ihdr = chunks.front().data;
  ASSERT_EQ(ihdr.size(), 13u);
  EXPECT_EQ(be32(ihdr, 0), 640u);
  EXPECT_EQ(be32(ihdr, 4), 400u);
  EXPECT_EQ(ihdr[8], 8);  // bit depth
  EXPECT_EQ(ihdr[9], 2);  // RGB

  std::vector<uint8_t> packed;
  for (const auto& c : chunks)
    if (c.type == "IDAT") packed.insert(packed.end(), c.data.begin(), c.data.end());
  const size_t stride = 1 + 3 * 640;
  std::vector<uint8_t> raw(stride * 400 + 1);
  uLongf raw_size = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &raw_size, packed.data(), packed.size()), Z_OK);
  ASSERT_EQ(raw_size, stride * 400);

  PlotFrame f = plotFrame(640, 400);
  size_t coloured = 0, outside_marks = 0;
  for (int y = 0; y < 400; ++y) {
    EXPECT_EQ(raw[y * stride], 0) << "filter byte of row " << y;
    for (int x = 0; x < 640; ++x) {
      const uint8_t* p = &raw[y * stride + 1 + 3 * x];
      bool background = p[0] == kPlotBackground && p[1] == kPlotBackground && p[2] == kPlotBackground;
      bool grey = p[0] == p[1] && p[1] == p[2];
      bool inside = x > f.left && x < f.right && y > f.top && y < f.bottom;
      if (inside && !grey) ++coloured;                 // a series' colour
      if (!inside && !background && y < f.top) ++outside_marks;  // the title
    }
  }
  EXPECT_GT(coloured, 500u);
  EXPECT_GT(outside_marks, 50u);
}

TEST(PngPlot, EncodingIsDeterministic) {
  auto a = encodePng(renderLineChart(sampleChart()));
  auto b = encodePng(renderLineChart(sampleChart()));
  EXPECT_EQ(a, b);
}

TEST(PngPlot, RejectsAbsurdSizes) {
  LineChart chart = sampleChart();
  chart.width = 10;
  EXPECT_THROW(renderLineChart(chart), std::invalid_argument);
}

TEST(PngPlot, NiceTicksUseRoundSteps) {
  auto ticks = niceTicks(0, 1, 5);
  ASSERT_EQ(ticks.size(), 6u);
  EXPECT_DOUBLE_EQ(ticks[1], 0.2);
  EXPECT_DOUBLE_EQ(ticks.back(), 1.0);
  ticks = niceTicks(3, 47, 4);
  ASSERT_FALSE(ticks.empty());
  EXPECT_DOUBLE_EQ(ticks[0], 10);
  EXPECT_DOUBLE_EQ(ticks[1] - ticks[0], 10);
}

}  // namespace
}  // namespace tapestry::tools
