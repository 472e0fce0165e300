#pragma once
// Line charts as PNG files with no plotting library: series of (x, y) points
// drawn into an in-memory RGB image with axes, "nice" tick labels, a legend
// and a title in a built-in bitmap font, then written as an 8-bit RGB PNG
// (zlib-compressed IDAT). Enough for benchmark reports; deterministic, so
// the same data gives the same bytes.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace tapestry::tools {

struct PlotSeries {
  std::string name;                              // legend entry
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
  bool dashed = false;                           // for reference lines
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  int width = 800, height = 500;
  // Axis ranges; NaN means "fit the data".
  double x_min = std::numeric_limits<double>::quiet_NaN(), x_max = std::numeric_limits<double>::quiet_NaN();
  double y_min = std::numeric_limits<double>::quiet_NaN(), y_max = std::numeric_limits<double>::quiet_NaN();
};

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major, 3 bytes per pixel

  const uint8_t* at(int x, int y) const { return pixels.data() + 3 * (static_cast<size_t>(y) * width + x); }
};

// The plotting area inside a chart of the given size, in pixels: the axes
// are drawn on its left and bottom edges.
struct PlotFrame {
  int left, top, right, bottom;
};
PlotFrame plotFrame(int width, int height);

inline constexpr uint8_t kPlotBackground = 255;  // white

// Throws std::invalid_argument for a size under 200x150 or over 8000x8000.
RgbImage renderLineChart(const LineChart& chart);
std::vector<uint8_t> encodePng(const RgbImage& image);
// Throws std::runtime_error naming the path if it cannot be written.
void writePng(const RgbImage& image, const std::string& path);
void writeLineChart(const LineChart& chart, const std::string& path);

// Tick positions covering [lo, hi] with a step of 1, 2 or 5 times a power of
// ten, about `target` of them.
std::vector<double> niceTicks(double lo, double hi, int target);

}  // namespace tapestry::tools
