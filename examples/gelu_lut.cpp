// GELU by a GQA-LUT piecewise-linear table: the 8-segment table etk ships (fitted by
// examples/gqa_lut_search.cpp; the JSON reader of etk/lut/table_io.hpp is not on main yet,
// so the shipped C++ table header is used), evaluated on a vector and checked against erf.
#include <etk/lut/pwl.hpp>
#include <etk/lut/tables/gelu_8.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const etk::lut::PwlTable& gelu = etk::lut::tables::gelu_8().dense;
  std::vector<float> x(801), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = -4.0f + 0.01f * static_cast<float>(i);
  etk::lut::pwl_eval(gelu, x.data(), y.data(), static_cast<std::ptrdiff_t>(x.size()));
  double max_err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    max_err = std::max(max_err, std::fabs(y[i] - exact));
  }
  std::printf("GELU, %d-segment table: max error %.3g on [-4, 4]\n", gelu.segments(), max_err);
  return max_err < 0.05 ? 0 : 1;
}
