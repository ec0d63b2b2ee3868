// chart_merge: draws the chart data files of the real-model reports (examples/ocr's
// report.chart, the sentence encoder's sentence.chart; curve_chart.hpp) into one SVG, one
// chart under another, for scripts/report's charts.svg with both models' curves.
//   chart_merge OUT.svg IN.chart [IN.chart ...]
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "curve_chart.hpp"

int main(int argc, char** argv) {
  try {
    if (argc < 3) throw std::invalid_argument("usage: chart_merge OUT.svg IN.chart [IN.chart ...]");
    std::vector<examples::Chart> charts;
    for (int k = 2; k < argc; ++k) {
      std::ifstream in(argv[k]);
      if (!in) throw std::runtime_error(std::string("cannot read '") + argv[k] + "'");
      charts.push_back(examples::read_chart_data(in));
    }
    std::ofstream out(argv[1]);
    examples::write_curve_charts(out, charts);
    if (!out) throw std::runtime_error(std::string("cannot write '") + argv[1] + "'");
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "chart_merge: " << e.what() << "\n";
    return 1;
  }
}
