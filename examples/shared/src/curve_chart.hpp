// curve_chart.hpp: the real-model reports' SVG chart (examples/ocr's report.svg, the
// sentence encoder's sentence.svg, and charts.svg with both): one panel per technique, accuracy against the
// technique's cost (its "effect": keys filtered, tokens kept, bits, LUT segments), one
// polyline per data set and a dashed line per baseline (the float model).
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace examples {

struct ChartPoint {
  double x = 0, y = 0;
  std::string label;  // the tooltip (the row's setting)
};

struct ChartSeries {
  std::string color;  // e.g. "#1f77b4"
  std::vector<ChartPoint> points;
};

struct ChartBaseline {
  std::string color;
  double y = 0;
};

struct ChartPanel {
  std::string title, x_label;
  std::vector<ChartSeries> series;
};

struct Chart {
  std::string title;
  double y_min = 0, y_max = 100;  // the y axis is clamped to [y_min, y_max]
  std::vector<ChartBaseline> baselines;  // drawn in every panel
  std::vector<ChartPanel> panels;
};

void write_curve_chart(std::ostream& os, const Chart& chart);
// Several charts in one SVG, one under another, each with its title and panels (the
// report's charts.svg: both models' curves).
void write_curve_charts(std::ostream& os, const std::vector<Chart>& charts);

// A chart as text, one tab-separated record a line: "chart" title y_min y_max first, then
// "baseline" color y, "panel" title x_label, "series" color, "point" x y label (a series
// belongs to the panel above it, a point to the series above it). Tabs and line breaks
// inside fields become spaces. read_chart_data throws std::runtime_error naming the line
// of any other record, a missing field or a number that is not finite.
void write_chart_data(std::ostream& os, const Chart& chart);
Chart read_chart_data(std::istream& is);

}  // namespace examples
