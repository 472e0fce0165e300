#include "tools/bench_convergence_report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tools/png_plot.h"

namespace tapestry::tools {

namespace {

constexpr const char* kNone = "—";

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", 100 * v);
  return buf;
}

std::string megabytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  return buf;
}

double best(const std::vector<double>& curve) {
  return curve.empty() ? 0 : *std::max_element(curve.begin(), curve.end());
}

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) out += " " + c + " |";
  return out + "\n";
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path + "; check that the output directory is writable");
}

std::vector<std::pair<double, double>> againstIndex(const std::vector<double>& curve) {
  std::vector<std::pair<double, double>> points;
  for (size_t i = 0; i < curve.size(); ++i) points.emplace_back(static_cast<double>(i), curve[i]);
  return points;
}

}  // namespace

std::optional<size_t> firstReaching(const std::vector<double>& curve, double target) {
  for (size_t i = 0; i < curve.size(); ++i)
    if (curve[i] >= target) return i;
  return std::nullopt;
}

std::string resultsTable(const ConvergenceResults& r) {
  std::string target = std::to_string(static_cast<int>(100 * kTargetAccuracy + 0.5)) + " %";
  std::string out = row({"model", "final test acc", "best test acc", "rounds to " + target, "sent per worker",
                         "sent per worker to " + target});
  out += row({"---", "---:", "---:", "---:", "---:", "---:"});
  for (const auto& v : r.variants) {
    if (!v.skipped.empty()) {
      out += row({v.name, "skipped: " + v.skipped, "", "", "", ""});
      continue;
    }
    auto reach = firstReaching(v.accuracy, kTargetAccuracy);
    out += row({v.name, percent(v.accuracy.empty() ? 0 : v.accuracy.back()), percent(best(v.accuracy)),
                reach ? std::to_string(*reach) : kNone, megabytes(v.bytes.empty() ? 0 : v.bytes.back()),
                reach ? megabytes(v.bytes[*reach]) : kNone});
  }
  auto central = firstReaching(r.centralised.curve, kTargetAccuracy);
  if (r.has_centralised)
    out += row({r.centralised.restarts == 0 ? std::string("centralised (union of shards)")
                                            : "centralised (union of shards; restarted " +
                                                  std::to_string(r.centralised.restarts) + "x after diverging)",
                percent(r.centralised.test_accuracy),
                percent(std::max(best(r.centralised.curve), r.centralised.test_accuracy)),
                central ? std::to_string(*central) : kNone, "0", "0"});
  if (!r.local.empty()) {
    double mean = 0, lo = 1, hi = 0;
    for (const auto& b : r.local) {
      mean += b.test_accuracy / static_cast<double>(r.local.size());
      lo = std::min(lo, b.test_accuracy);
      hi = std::max(hi, b.test_accuracy);
    }
    std::string k = std::to_string(r.local.size());
    out += row({"local only, mean of " + k, percent(mean), "", "", "0", ""});
    out += row({"local only, worst of " + k, percent(lo), "", "", "0", ""});
    out += row({"local only, best of " + k, percent(hi), "", "", "0", ""});
  }
  return out;
}

nlohmann::json resultsJson(const ConvergenceResults& r) {
  nlohmann::json j = {{"plan", r.plan},
                      {"rounds", r.rounds},
                      {"local_steps", r.local_steps},
                      {"test_samples", r.test_samples},
                      {"target_accuracy", kTargetAccuracy},
                      {"seconds", r.seconds},
                      {"centralised",
                       {{"final", r.centralised.test_accuracy},
                        {"accuracy", r.centralised.curve},
                        {"restarts", r.centralised.restarts}}}};
  j["local"] = nlohmann::json::array();
  for (const auto& b : r.local) 
    j["local"].push_back({{"name", b.name}, {"final", b.test_accuracy}, {"accuracy", b.curve}, {"restarts", b.restarts}});
  j["variants"] = nlohmann::json::array();
  for (const auto& v : r.variants) {
    nlohmann::json e = {{"name", v.name},         {"accuracy", v.accuracy},           {"bytes_per_worker", v.bytes},
                        {"seconds", v.seconds},    {"contributions", v.contributions}, {"late_contributions", v.late}};
    if (!v.skipped.empty()) e["skipped"] = v.skipped;
    auto reach = firstReaching(v.accuracy, kTargetAccuracy);
    e["rounds_to_target"] = reach ? nlohmann::json(*reach) : nlohmann::json(nullptr);
    j["variants"].push_back(e);
  }
  return j;
}

void writeConvergenceReport(const ConvergenceResults& r, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  std::string md = "# Convergence: " + r.title + "\n\n" + std::to_string(r.rounds) + " rounds x " +
                   std::to_string(r.local_steps) + " local steps; test accuracy on " +
                   std::to_string(r.test_samples) +
                   " Fashion-MNIST test images. Centralised and local-only models train for the same number "
                   "of sample passes; their 'rounds' are round-equivalents.\n\n" +
                   resultsTable(r) + "\n![accuracy vs round](accuracy_vs_round.png)\n" +
                   "![accuracy vs bytes](accuracy_vs_bytes.png)\n";
  writeText(out_dir + "/results.md", md);
  writeText(out_dir + "/results.json", resultsJson(r).dump(2) + "\n");

  LineChart by_round;
  by_round.title = "Consensus test accuracy: " + r.title;
  by_round.x_label = "round";
  by_round.y_label = "test accuracy";
  by_round.x_min = 0;
  LineChart by_bytes = by_round;
  by_bytes.x_label = "MB sent per worker";
  for (const auto& v : r.variants) {
    if (!v.skipped.empty()) continue;
    by_round.series.push_back({v.name, againstIndex(v.accuracy), false});
    PlotSeries s{v.name, {}, false};
    for (size_t i = 0; i < v.accuracy.size() && i < v.bytes.size(); ++i) s.points.emplace_back(v.bytes[i] / 1e6, v.accuracy[i]);
    by_bytes.series.push_back(std::move(s));
  }
  if (r.has_centralised) by_round.series.push_back({"centralised", againstIndex(r.centralised.curve), true});
  if (!r.local.empty() && !r.local[0].curve.empty()) {
    std::vector<double> mean(r.local[0].curve.size(), 0.0);
    for (const auto& b : r.local)
      for (size_t i = 0; i < mean.size() && i < b.curve.size(); ++i) mean[i] += b.curve[i] / static_cast<double>(r.local.size());
    by_round.series.push_back({"local only (mean)", againstIndex(mean), true});
  }
  writeLineChart(by_round, out_dir + "/accuracy_vs_round.png");
  writeLineChart(by_bytes, out_dir + "/accuracy_vs_bytes.png");
}

}  // namespace tapestry::tools
