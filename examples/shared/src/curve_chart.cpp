// curve_chart.cpp: see curve_chart.hpp.
#include "curve_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace examples {

namespace {

std::string xml(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Draws chart's title and panels with their top at y = top; returns the height used.
int draw_chart(std::ostream& os, const Chart& chart, int top) {
  const int pw = 320, ph = 220, cols = 3, margin = 50;
  const int n = std::max<int>(1, int(chart.panels.size()));
  os << "<text x=\"" << margin << "\" y=\"" << top + 24 << "\" font-size=\"15\">" << xml(chart.title) << "</text>\n";
  if (chart.panels.empty())
    os << "<text x=\"50\" y=\"" << top + 60 << "\">no technique rows with an effect yet</text>\n";
  for (int k = 0; k < int(chart.panels.size()); ++k) {
    const ChartPanel& panel = chart.panels[std::size_t(k)];
    const int x0 = margin + (k % cols) * (pw + margin), y0 = top + 50 + (k / cols) * (ph + margin + 20);
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const auto& s : panel.series)
      for (const auto& p : s.points) {
        xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
        ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
      }
    for (const auto& b : chart.baselines) ymin = std::min(ymin, b.y), ymax = std::max(ymax, b.y);
    const double span = chart.y_max - chart.y_min, least = 0.005 * span;
    if (xmax - xmin < 1e-9) xmin -= 1, xmax += 1;
    if (ymax - ymin < least) ymin -= least / 2, ymax += least / 2;
    const double pad = 0.05 * (ymax - ymin);
    ymin = std::max(chart.y_min, ymin - pad);
    ymax = std::min(chart.y_max, ymax + pad);
    if (ymax - ymin < least) ymin = ymax - least;
    auto X = [&](double v) { return x0 + (v - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double v) { return y0 + ph - (v - ymin) / (ymax - ymin) * ph; };
    os << "<g><rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << pw << "\" height=\"" << ph
       << "\" fill=\"none\" stroke=\"#888\"/>\n<text x=\"" << x0 << "\" y=\"" << y0 - 6 << "\" font-size=\"12\">"
       << xml(panel.title) << "</text>\n<text x=\"" << x0 + pw / 2 << "\" y=\"" << y0 + ph + 28
       << "\" text-anchor=\"middle\">" << xml(panel.x_label) << "</text>\n";
    const char* yfmt = span <= 2 ? "%.3f" : "%.1f";
    for (int t = 0; t <= 4; ++t) {
      const double yv = ymin + (ymax - ymin) * t / 4, xv = xmin + (xmax - xmin) * t / 4;
      os << "<text x=\"" << x0 - 4 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << num(yfmt, yv)
         << "</text><text x=\"" << X(xv) << "\" y=\"" << y0 + ph + 14 << "\" text-anchor=\"middle\">"
         << num("%g", std::round(xv * 100) / 100) << "</text>\n";
    }
    for (const auto& b : chart.baselines)
      os << "<line x1=\"" << x0 << "\" x2=\"" << x0 + pw << "\" y1=\"" << Y(b.y) << "\" y2=\"" << Y(b.y)
         << "\" stroke=\"" << b.color << "\" stroke-dasharray=\"4 3\"/>\n";
    for (const auto& s : panel.series) {
      std::vector<ChartPoint> ps = s.points;
      std::sort(ps.begin(), ps.end(), [](const ChartPoint& a, const ChartPoint& b) { return a.x < b.x; });
      if (ps.size() > 1) {
        os << "<polyline fill=\"none\" stroke=\"" << s.color << "\" points=\"";
        for (const auto& p : ps) os << X(p.x) << "," << Y(p.y) << " ";
        os << "\"/>\n";
      }
      for (const auto& p : ps)
        os << "<circle cx=\"" << X(p.x) << "\" cy=\"" << Y(p.y) << "\" r=\"3\" fill=\"" << s.color << "\"><title>"
           << xml(p.label) << "</title></circle>\n";
    }
    os << "</g>\n";
  }
  return ((n + cols - 1) / cols) * (ph + margin + 20) + 60;
}

int chart_width() { return 3 * (320 + 50) + 50; }

}  // namespace

void write_curve_charts(std::ostream& os, const std::vector<Chart>& charts) {
  std::ostringstream body;
  int height = 0;
  for (const Chart& c : charts) height += draw_chart(body, c, height);
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << chart_width() << "\" height=\"" << std::max(height, 60)
     << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << body.str() << "</svg>\n";
}

void write_curve_chart(std::ostream& os, const Chart& chart) { write_curve_charts(os, {chart}); }

namespace {

// A field of the text form: tabs and line breaks would end it, so they become spaces.
std::string field(const std::string& s) {
  std::string o = s;
  for (char& c : o)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return o;
}

std::string real(double v) { return num("%.17g", v); }

double parse_real(const std::string& s, std::size_t line) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v))
    throw std::runtime_error("chart data line " + std::to_string(line) + ": '" + s + "' is not a finite number");
  return v;
}

}  // namespace

void write_chart_data(std::ostream& os, const Chart& chart) {
  os << "chart\t" << field(chart.title) << "\t" << real(chart.y_min) << "\t" << real(chart.y_max) << "\n";
  for (const auto& b : chart.baselines) os << "baseline\t" << field(b.color) << "\t" << real(b.y) << "\n";
  for (const auto& p : chart.panels) {
    os << "panel\t" << field(p.title) << "\t" << field(p.x_label) << "\n";
    for (const auto& s : p.series) {
      os << "series\t" << field(s.color) << "\n";
      for (const auto& pt : s.points) os << "point\t" << real(pt.x) << "\t" << real(pt.y) << "\t" << field(pt.label) << "\n";
    }
  }
}

Chart read_chart_data(std::istream& is) {
  Chart c;
  bool have_chart = false;
  std::size_t no = 0;
  for (std::string line; std::getline(is, line);) {
    ++no;
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    if (!line.empty() && line.back() == '\t') f.push_back("");
    const auto bad = [&](const char* why) {
      return std::runtime_error("chart data line " + std::to_string(no) + ": " + why);
    };
    const std::string kind = f.empty() ? "" : f[0];
    if (kind == "chart" && f.size() == 4 && !have_chart) {
      c.title = f[1], c.y_min = parse_real(f[2], no), c.y_max = parse_real(f[3], no);
      if (!(c.y_min < c.y_max)) throw bad("y_min must be below y_max");
      have_chart = true;
    } else if (!have_chart) {
      throw bad("the first record must be one 'chart' record (title, y_min, y_max)");
    } else if (kind == "baseline" && f.size() == 3) {
      c.baselines.push_back({f[1], parse_real(f[2], no)});
    } else if (kind == "panel" && f.size() == 3) {
      c.panels.push_back({f[1], f[2], {}});
    } else if (kind == "series" && f.size() == 2) {
      if (c.panels.empty()) throw bad("a 'series' record before any 'panel'");
      c.panels.back().series.push_back({f[1], {}});
    } else if (kind == "point" && f.size() == 4) {
      if (c.panels.empty() || c.panels.back().series.empty()) throw bad("a 'point' record before any 'series'");
      c.panels.back().series.back().points.push_back({parse_real(f[1], no), parse_real(f[2], no), f[3]});
    } else {
      throw bad("not a chart, baseline, panel, series or point record with its fields");
    }
  }
  if (!have_chart) throw std::runtime_error("chart data: empty (no 'chart' record)");
  return c;
}

}  // namespace examples
