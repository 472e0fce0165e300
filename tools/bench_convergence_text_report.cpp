#include "tools/bench_convergence_text_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "tools/png_plot.h"

namespace tapestry::tools {

namespace {

std::string bpb(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) out += " " + c + " |";
  return out + "\n";
}

std::string header(const std::string& first, const std::vector<std::string>& languages, bool mean) {
  std::vector<std::string> cells = {first}, rule = {"---"};
  for (const auto& l : languages) cells.push_back(l), rule.push_back("---:");
  if (mean) cells.push_back("mean"), rule.push_back("---:");
  return row(cells) + row(rule);
}

std::string valuesRow(const std::string& name, const std::vector<double>& values, bool mean) {
  std::vector<std::string> cells = {name};
  for (double v : values) cells.push_back(bpb(v));
  if (mean) cells.push_back(bpb(meanOf(values)));
  return row(cells);
}

bool ran(const TextArm& a) { return a.skipped.empty() && !a.bpb.empty(); }

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path + "; check that the output directory is writable");
}

PlotSeries meanCurve(const std::string& name, const std::vector<std::vector<double>>& bpb, bool dashed) {
  PlotSeries s{name, {}, dashed};
  for (size_t r = 0; r < bpb.size(); ++r) s.points.emplace_back(static_cast<double>(r), meanOf(bpb[r]));
  return s;
}

// Mean over the alone models of their bpb on their own language (own) or
// on the other languages (!own), per round.
PlotSeries aloneCurve(const TextConvergenceResults& r, bool own) {
  PlotSeries s{own ? "alone, own language (mean)" : "alone, other languages (mean)", {}, true};
  if (r.alone.empty() || (!own && r.alone.size() < 2)) return s;
  for (size_t t = 0; t < r.alone[0].bpb.size(); ++t) {
    std::vector<double> values;
    for (size_t i = 0; i < r.alone.size(); ++i)
      for (size_t l = 0; l < r.alone[i].bpb.at(t).size(); ++l)
        if ((l == i) == own) values.push_back(r.alone[i].bpb[t][l]);
    s.points.emplace_back(static_cast<double>(t), meanOf(values));
  }
  return s;
}

}  // namespace

double meanOf(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

namespace {

void checkAgainst(const TextConvergenceResults& r, const TextArm& reference, const char* target, const char* label,
                  const char* what, std::vector<TargetCheck>& out) {
  for (const auto& v : r.variants) {
    if (!ran(v)) continue;
    size_t worst = 0;
    double worst_excess = -std::numeric_limits<double>::infinity();
    for (size_t l = 0; l < r.languages.size(); ++l) {
      double excess = v.last()[l] / reference.last()[l] - 1;
      if (std::isnan(excess)) excess = std::numeric_limits<double>::infinity();
      if (excess > worst_excess) worst_excess = excess, worst = l;
    }
    TargetCheck c;
    c.target = target;
    c.passed = worst_excess <= kTextCentralisedTolerance;
    char buf[320];
    std::snprintf(buf, sizeof buf, "%s %s: %s - consensus bpb %s within %.0f%% of %s on every language "
                                   "(worst %s: %.3f vs %.3f, %+.1f%%)",
                  label, v.name.c_str(), c.passed ? "PASS" : "FAIL", c.passed ? "is" : "is not",
                  100 * kTextCentralisedTolerance, what, r.languages[worst].c_str(), v.last()[worst],
                  reference.last()[worst], 100 * worst_excess);
    c.line = buf;
    out.push_back(c);
  }
}

}  // namespace

std::vector<TargetCheck> centralisedChecks(const TextConvergenceResults& r) {
  std::vector<TargetCheck> out;
  if (!ran(r.centralised)) return out;  // --no-baselines
  checkAgainst(r, r.centralised, "i", "(i)", "centralised", out);
  if (ran(r.centralised_same_steps))
    checkAgainst(r, r.centralised_same_steps, "i-same-steps", "(i, same steps)", "data-parallel centralised", out);
  return out;
}

std::vector<TargetCheck> aloneChecks(const TextConvergenceResults& r) {
  std::vector<TargetCheck> out;
  for (const auto& v : r.variants) {
    if (!ran(v)) continue;
    TargetCheck c;
    c.target = "ii";
    if (r.alone.empty() && r.languages.size() > 1) return {};  // --no-baselines
    if (r.alone.size() < 2) {
      c.passed = true;
      c.line = "(ii) " + v.name + ": n/a - one language, no model trained on another language";
      out.push_back(c);
      continue;
    }
    // margin: best other-language alone bpb on L minus consensus bpb on L.
    size_t worst = 0, worst_by = 0;
    double worst_margin = std::numeric_limits<double>::infinity();
    for (size_t l = 0; l < r.languages.size(); ++l)
      for (size_t m = 0; m < r.alone.size(); ++m) {
        if (m == l) continue;
        double margin = r.alone[m].last()[l] - v.last()[l];
        if (std::isnan(margin)) margin = -std::numeric_limits<double>::infinity();
        if (margin < worst_margin) worst_margin = margin, worst = l, worst_by = m;
      }
    c.passed = worst_margin > 0;
    char buf[320];
    std::snprintf(buf, sizeof buf, "(ii) %s: %s - on every language the consensus %s every model trained alone on "
                                   "another language (closest: on %s, %.3f vs %.3f of the %s-alone model)",
                  v.name.c_str(), c.passed ? "PASS" : "FAIL", c.passed ? "beats" : "does not beat",
                  r.languages[worst].c_str(), v.last()[worst], r.alone[worst_by].last()[worst],
                  r.languages[worst_by].c_str());
    c.line = buf;
    out.push_back(c);
  }
  return out;
}

std::string textConsensusTable(const TextConvergenceResults& r) {
  std::string out = header("model", r.languages, true);
  for (const auto& v : r.variants) {
    if (!v.skipped.empty()) {
      out += row({v.name, "skipped: " + v.skipped});
      continue;
    }
    if (ran(v)) out += valuesRow(v.name + " (consensus z_" + std::to_string(v.bpb.size() - 1) + ")", v.last(), true);
  }
  if (ran(r.centralised)) out += valuesRow("centralised (union of languages)", r.centralised.last(), true);
  if (ran(r.centralised_same_steps))
    out += valuesRow("data-parallel centralised (union, one worker's steps, K x batch)", r.centralised_same_steps.last(),
                     true);
  if (!r.alone.empty()) {
    std::vector<double> own;
    for (size_t i = 0; i < r.alone.size(); ++i) own.push_back(r.alone[i].last().at(i));
    out += valuesRow("each language alone, on itself", own, true);
  }
  return out;
}

std::string textAloneMatrix(const TextConvergenceResults& r) {
  std::string out = header("trained alone on \\ evaluated on", r.languages, true);
  for (size_t i = 0; i < r.alone.size(); ++i) out += valuesRow(r.languages[i], r.alone[i].last(), true);
  return out;
}

std::string textResultsSummary(const TextConvergenceResults& r) {
  std::string out = "Bits per byte on each language's held-out text (lower is better; uniform = 8):\n\n" +
                    textConsensusTable(r);
  if (!r.alone.empty()) out += "\nLanguage-alone models on every language:\n\n" + textAloneMatrix(r);
  if (!ran(r.centralised) && r.alone.empty()) return out + "\nNo baselines were trained (--no-baselines): no targets checked.\n";
  out += "\nTargets:\n\n";
  for (const auto& c : centralisedChecks(r)) out += "- " + c.line + "\n";
  for (const auto& c : aloneChecks(r)) out += "- " + c.line + "\n";
  return out;
}

nlohmann::json textResultsJson(const TextConvergenceResults& r) {
  auto arm = [](const TextArm& a) {
    nlohmann::json j = {{"name", a.name}, {"bpb", a.bpb}, {"seconds", a.seconds}};
    std::vector<double> mean;
    for (const auto& round : a.bpb) mean.push_back(meanOf(round));
    j["mean_bpb"] = mean;
    if (!a.bpb.empty()) j["final"] = a.last();
    if (!a.bytes.empty()) j["bytes_per_worker"] = a.bytes;
    if (!a.skipped.empty()) j["skipped"] = a.skipped;
    return j;
  };
  nlohmann::json j = {{"task", "text"},           {"plan", r.plan},
                      {"languages", r.languages}, {"train_bytes", r.train_bytes},
                      {"eval_bytes", r.eval_bytes}, {"rounds", r.rounds},
                      {"local_steps", r.local_steps}, {"seconds", r.seconds}};
  if (ran(r.centralised)) j["centralised"] = arm(r.centralised);
  if (ran(r.centralised_same_steps)) j["centralised_same_steps"] = arm(r.centralised_same_steps);
  j["alone"] = nlohmann::json::array();
  for (const auto& a : r.alone) j["alone"].push_back(arm(a));
  j["variants"] = nlohmann::json::array();
  for (const auto& v : r.variants) j["variants"].push_back(arm(v));
  j["checks"] = nlohmann::json::array();
  for (const auto& checks : {centralisedChecks(r), aloneChecks(r)})
    for (const auto& c : checks) j["checks"].push_back({{"target", c.target}, {"passed", c.passed}, {"line", c.line}});
  return j;
}

void writeTextConvergenceReport(const TextConvergenceResults& r, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  std::string md = "# Convergence: multilingual fortunes, one worker per language\n\n" + std::to_string(r.rounds) +
                   " rounds x " + std::to_string(r.local_steps) + " local steps per worker; languages:";
  for (size_t l = 0; l < r.languages.size(); ++l)
    md += " " + r.languages[l] + " (" + std::to_string(r.train_bytes.at(l)) + " training bytes, " +
          std::to_string(r.eval_bytes.at(l)) + " held-out bytes evaluated)" + (l + 1 < r.languages.size() ? "," : ".");
  md += " Each language-alone model trains as many steps as one federated worker; the centralised model trains "
        "as many as all workers together, on the union of the training text. The data-parallel centralised model "
        "(when shown) trains on the same union and sample passes in as many steps as one worker, each on a batch "
        "K times larger: what synchronous training over K machines would do.\n\n" +
        textResultsSummary(r) + "\n![mean bits per byte vs round](bpb_vs_round.png)\n";
  writeText(out_dir + "/results.md", md);
  writeText(out_dir + "/results.json", textResultsJson(r).dump(2) + "\n");

  LineChart chart;
  chart.title = "Mean bits per byte over " + std::to_string(r.languages.size()) + " languages";
  chart.x_label = "round";
  chart.y_label = "bits per byte";
  chart.x_min = 0;
  for (const auto& v : r.variants)
    if (ran(v)) chart.series.push_back(meanCurve(v.name, v.bpb, false));
  if (ran(r.centralised)) chart.series.push_back(meanCurve("centralised", r.centralised.bpb, true));
  if (ran(r.centralised_same_steps))
    chart.series.push_back(meanCurve("data-parallel centralised", r.centralised_same_steps.bpb, true));
  for (bool own : {true, false}) {
    PlotSeries s = aloneCurve(r, own);
    if (!s.points.empty()) chart.series.push_back(std::move(s));
  }
  writeLineChart(chart, out_dir + "/bpb_vs_round.png");
}

}  // namespace tapestry::tools
