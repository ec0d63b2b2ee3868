// curve_chart.cpp: see curve_chart.hpp.
#include "curve_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

}  // namespace

void write_curve_chart(std::ostream& os, const Chart& chart) {
  const int pw = 320, ph = 220, cols = 3, margin = 50;
  const int n = std::max<int>(1, int(chart.panels.size()));
  const int W = cols * (pw + margin) + margin, H = ((n + cols - 1) / cols) * (ph + margin + 20) + 60;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
     << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << "<text x=\"" << margin << "\" y=\"24\" font-size=\"15\">" << xml(chart.title) << "</text>\n";
  if (chart.panels.empty()) os << "<text x=\"50\" y=\"60\">no technique rows with an effect yet</text>\n";
  for (int k = 0; k < int(chart.panels.size()); ++k) {
    const ChartPanel& panel = chart.panels[std::size_t(k)];
    const int x0 = margin + (k % cols) * (pw + margin), y0 = 50 + (k / cols) * (ph + margin + 20);
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
  os << "</svg>\n";
}

}  // namespace examples
