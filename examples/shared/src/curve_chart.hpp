// curve_chart.hpp: the real-model reports' SVG chart (examples/ocr's report.svg and the
// sentence encoder's sentence.svg): one panel per technique, accuracy against the
// technique's cost (its "effect": keys filtered, tokens kept, bits, LUT segments), one
// polyline per data set and a dashed line per baseline (the float model).
#pragma once

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

}  // namespace examples
