// GELU by a GQA-LUT piecewise-linear table loaded from JSON, the file
// examples/gqa_lut_search.cpp writes (`--json gelu_8.json`). Pass that file's path; run
// without one, the 8-segment GELU table etk ships is first written to a temporary file in
// the same format. The table is read by etk::lut::read_table_json (malformed files are an
// etk::invalid_argument naming the key), evaluated on a vector and checked against erf.
#include <etk/lut/pwl.hpp>
#include <etk/lut/table_io.hpp>
#include <etk/lut/tables/gelu_8.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string path;
  if (argc > 1) {
    path = argv[1];
  } else {
    path = (std::filesystem::temp_directory_path() / "etk_example_gelu_8.json").string();
    std::ofstream out(path);
    etk::lut::write_table_json(out, etk::lut::tables::gelu_8(), "GELU, 8 segments, as etk ships it");
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 2;
    }
  }

  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return 2;
  }
  const etk::lut::TableSet table = etk::lut::read_table_json(in);
  const etk::lut::PwlTable& gelu = table.dense;

  std::vector<float> x(801), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = -4.0f + 0.01f * static_cast<float>(i);
  etk::lut::pwl_eval(gelu, x.data(), y.data(), static_cast<std::ptrdiff_t>(x.size()));
  double max_err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    max_err = std::max(max_err, std::fabs(y[i] - exact));
  }
  std::printf("%s, %d-segment table from %s: max error %.3g on [-4, 4]\n", table.function.c_str(),
              gelu.segments(), path.c_str(), max_err);
  return max_err < 0.05 ? 0 : 1;
}
