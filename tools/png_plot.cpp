#include "tools/png_plot.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "tools/png_plot_font.h"

namespace tapestry::tools {

namespace {

using Color = std::array<uint8_t, 3>;

constexpr Color kBlack{0, 0, 0};
constexpr Color kGrid{225, 225, 225};
constexpr Color kWhite{kPlotBackground, kPlotBackground, kPlotBackground};
// Tableau 10: distinct, and readable on white.
constexpr Color kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                              {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

class Canvas {
 public:
  Canvas(int width, int height) : image_{width, height, std::vector<uint8_t>(3 * size_t(width) * height, 255)} {}

  void set(int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
    std::copy(c.begin(), c.end(), image_.pixels.begin() + 3 * (size_t(y) * image_.width + x));
  }
  void fill(int x0, int y0, int x1, int y1, Color c) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) set(x, y, c);
  }
  // A line `thick` pixels wide; dashed lines alternate 6 pixels on, 4 off.
  // Pixels outside `clip` are left alone.
  void line(double x0, double y0, double x1, double y1, Color c, int thick, bool dashed, const PlotFrame& clip) {
    double dx = x1 - x0, dy = y1 - y0;
    int steps = std::max(1, static_cast<int>(std::ceil(std::max(std::fabs(dx), std::fabs(dy)))));
    for (int i = 0; i <= steps; ++i) {
      if (dashed && (dash_ + i) % 10 >= 6) continue;
      int x = static_cast<int>(std::lround(x0 + dx * i / steps)), y = static_cast<int>(std::lround(y0 + dy * i / steps));
      for (int oy = 0; oy < thick; ++oy)
        for (int ox = 0; ox < thick; ++ox)
          if (x + ox >= clip.left && x + ox <= clip.right && y + oy >= clip.top && y + oy <= clip.bottom)
            set(x + ox, y + oy, c);
    }
    dash_ += steps;
  }
  void text(int x, int y, const std::string& s, Color c, int scale = 1) {
    for (size_t i = 0; i < s.size(); ++i) {
      const uint8_t* rows = glyphRows(s[i]);
      for (int r = 0; r < kGlyphHeight; ++r)
        for (int b = 0; b < kGlyphWidth; ++b)
          if (rows[r] & (0x80 >> b))
            fill(x + (int(i) * kGlyphWidth + b) * scale, y + r * scale, x + (int(i) * kGlyphWidth + b + 1) * scale - 1,
                 y + (r + 1) * scale - 1, c);
    }
  }
  // Text read bottom to top, its first character's lower left at (x, y).
  void verticalText(int x, int y, const std::string& s, Color c) {
    for (size_t i = 0; i < s.size(); ++i) {
      const uint8_t* rows = glyphRows(s[i]);
      for (int r = 0; r < kGlyphHeight; ++r)
        for (int b = 0; b < kGlyphWidth; ++b)
          if (rows[r] & (0x80 >> b)) set(x + r, y - int(i) * kGlyphWidth - b, c);
    }
  }
  void resetDash() { dash_ = 0; }
  RgbImage take() { return std::move(image_); }

 private:
  RgbImage image_;
  int dash_ = 0;
};

int textWidth(const std::string& s, int scale = 1) { return static_cast<int>(s.size()) * kGlyphWidth * scale; }

std::string tickLabel(double value, double step) {
  int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(value) < step * 1e-6 ? 0.0 : value);
  return buf;
}

// [lo, hi] of the finite coordinates, or the chart's fixed bounds.
std::pair<double, double> axisRange(const LineChart& chart, bool x_axis) {
  double lo = x_axis ? chart.x_min : chart.y_min, hi = x_axis ? chart.x_max : chart.y_max;
  double data_lo = INFINITY, data_hi = -INFINITY;
  for (const auto& s : chart.series)
    for (const auto& [x, y] : s.points) {
      double v = x_axis ? x : y;
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      data_lo = std::min(data_lo, v);
      data_hi = std::max(data_hi, v);
    }
  if (!std::isfinite(data_lo)) data_lo = 0, data_hi = 1;
  double margin = 0.04 * (data_hi - data_lo);  // keep fitted curves off the frame
  if (std::isnan(lo)) lo = data_lo - margin;
  if (std::isnan(hi)) hi = data_hi + margin;
  if (!(hi > lo)) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  return {lo, hi};
}

void appendChunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  auto put32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
  };
  put32(static_cast<uint32_t>(data.size()));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put32(static_cast<uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(out.size() - start))));
}

}  // namespace

PlotFrame plotFrame(int width, int height) { return {70, 40, width - 20, height - 50}; }

std::vector<double> niceTicks(double lo, double hi, int target) {
  if (!(hi > lo) || target < 1) return {lo};
  double raw = (hi - lo) / target, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude * (raw / magnitude < 1.5 ? 1 : raw / magnitude < 3.5 ? 2 : raw / magnitude < 7.5 ? 5 : 10);
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

RgbImage renderLineChart(const LineChart& chart) {
  if (chart.width < 200 || chart.height < 150 || chart.width > 8000 || chart.height > 8000)
    throw std::invalid_argument("a chart must be 200x150 to 8000x8000 pixels, not " + std::to_string(chart.width) +
                                "x" + std::to_string(chart.height));
  Canvas canvas(chart.width, chart.height);
  PlotFrame f = plotFrame(chart.width, chart.height);
  auto [x_lo, x_hi] = axisRange(chart, true);
  auto [y_lo, y_hi] = axisRange(chart, false);
  auto px = [&](double x) { return f.left + (x - x_lo) / (x_hi - x_lo) * (f.right - f.left); };
  auto py = [&](double y) { return f.bottom - (y - y_lo) / (y_hi - y_lo) * (f.bottom - f.top); };

  auto x_ticks = niceTicks(x_lo, x_hi, std::max(2, (f.right - f.left) / 90));
  auto y_ticks = niceTicks(y_lo, y_hi, std::max(2, (f.bottom - f.top) / 50));
  double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1, y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1;
  for (double t : x_ticks) {
    int x = static_cast<int>(std::lround(px(t)));
    canvas.fill(x, f.top, x, f.bottom - 1, kGrid);
    canvas.fill(x, f.bottom, x, f.bottom + 4, kBlack);
    std::string label = tickLabel(t, x_step);
    canvas.text(x - textWidth(label) / 2, f.bottom + 7, label, kBlack);
  }
  for (double t : y_ticks) {
    int y = static_cast<int>(std::lround(py(t)));
    canvas.fill(f.left + 1, y, f.right, y, kGrid);
    canvas.fill(f.left - 4, y, f.left, y, kBlack);
    std::string label = tickLabel(t, y_step);
    canvas.text(f.left - 7 - textWidth(label), y - kGlyphHeight / 2, label, kBlack);
  }
  canvas.fill(f.left, f.top, f.left, f.bottom, kBlack);
  canvas.fill(f.left, f.bottom, f.right, f.bottom, kBlack);
  canvas.text((f.left + f.right - textWidth(chart.x_label)) / 2, f.bottom + 24, chart.x_label, kBlack);
  canvas.verticalText(8, (f.top + f.bottom + textWidth(chart.y_label)) / 2, chart.y_label, kBlack);
  int title_scale = textWidth(chart.title, 2) <= chart.width - 20 ? 2 : 1;
  canvas.text((chart.width - textWidth(chart.title, title_scale)) / 2, 10, chart.title, kBlack, title_scale);

  PlotFrame inside{f.left + 1, f.top, f.right, f.bottom - 1};
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const auto& s = chart.series[i];
    Color c = kPalette[i % std::size(kPalette)];
    canvas.resetDash();
    const std::pair<double, double>* previous = nullptr;
    for (const auto& p : s.points) {
      if (!std::isfinite(p.first) || !std::isfinite(p.second)) continue;
      if (previous) canvas.line(px(previous->first), py(previous->second), px(p.first), py(p.second), c, 2, s.dashed, inside);
      if (!s.dashed && s.points.size() <= 60) canvas.line(px(p.first) - 1, py(p.second) - 1, px(p.first) - 1, py(p.second) - 1, c, 4, false, inside);
      previous = &p;
    }
  }

  // Legend in the lower right corner of the plotting area.
  int longest = 0;
  for (const auto& s : chart.series) longest = std::max(longest, textWidth(s.name));
  int row = kGlyphHeight + 4, box_w = longest + 40, box_h = row * static_cast<int>(chart.series.size()) + 8;
  int bx = f.right - box_w - 8, by = f.bottom - box_h - 8;
  if (!chart.series.empty()) {
    canvas.fill(bx, by, bx + box_w, by + box_h, kWhite);
    canvas.fill(bx, by, bx + box_w, by, kBlack);
    canvas.fill(bx, by + box_h, bx + box_w, by + box_h, kBlack);
    canvas.fill(bx, by, bx, by + box_h, kBlack);
    canvas.fill(bx + box_w, by, bx + box_w, by + box_h, kBlack);
  }
  PlotFrame everywhere{0, 0, chart.width - 1, chart.height - 1};
  for (size_t i = 0; i < chart.series.size(); ++i) {
    int y = by + 5 + row * static_cast<int>(i);
    canvas.resetDash();
    canvas.line(bx + 6, y + kGlyphHeight / 2, bx + 28, y + kGlyphHeight / 2, kPalette[i % std::size(kPalette)], 2,
                chart.series[i].dashed, everywhere);
    canvas.text(bx + 34, y, chart.series[i].name, kBlack);
  }
  return canvas.take();
}

std::vector<uint8_t> encodePng(const RgbImage& image) {
  std::vector<uint8_t> raw;
  size_t stride = 3 * static_cast<size_t>(image.width);
  raw.reserve((stride + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), image.pixels.begin() + y * stride, image.pixels.begin() + (y + 1) * stride);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  if (compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw std::runtime_error("zlib could not compress the image");
  packed.resize(packed_size);

  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> header(13, 0);
  for (int i = 0; i < 4; ++i) {
    header[i] = static_cast<uint8_t>(static_cast<uint32_t>(image.width) >> (24 - 8 * i));
    header[4 + i] = static_cast<uint8_t>(static_cast<uint32_t>(image.height) >> (24 - 8 * i));
  }
  header[8] = 8;  // bits per channel
  header[9] = 2;  // colour type RGB; compression, filter and interlace stay 0
  appendChunk(out, "IHDR", header);
  appendChunk(out, "IDAT", packed);
  appendChunk(out, "IEND", {});
  return out;
}

void writePng(const RgbImage& image, const std::string& path) {
  auto bytes = encodePng(image);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write the chart to " + path + "; check that its directory exists and is writable");
}

void writeLineChart(const LineChart& chart, const std::string& path) { writePng(renderLineChart(chart), path); }

}  // namespace tapestry::tools
