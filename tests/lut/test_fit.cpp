// Tests of etk/lut/fit.hpp's sample grids. dense_samples is documented as
// x_i = lo + i * step (double, from lo each time) for every x_i < hi, and as NOT numpy's
// np.arange(lo, hi, step) (lo + i * d with d = RN(RN(lo + step) - lo), ceil((hi - lo) /
// step) points); both halves of that sentence are pinned here.
#include <catch2/catch.hpp>
#include <etk/lut/fit.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>

using etk::lut::Function;

namespace {
// np.arange's points, as numpy computes them (PyArray_Arange: delta = (start + step) -
// start, length = ceil((stop - start) / step), value i = start + i * delta).
std::vector<double> np_arange(double lo, double hi, double step) {
  const double delta = (lo + step) - lo;
  const auto n = static_cast<std::size_t>(std::ceil((hi - lo) / step));
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = lo + static_cast<double>(i) * delta;
  return x;
}
}  // namespace

TEST_CASE("dense_samples is lo + i * step for every point below hi") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-8.0, 8.0), w(0.05, 6.0);
  const double steps[] = {0.01, 0.003, 0.1, 0.37, 1.0 / 3.0};
  for (int trial = 0; trial < 40; ++trial) {
    const double lo = trial == 0 ? -4.0 : u(rng), hi = trial == 0 ? 4.0 : lo + w(rng);
    const double step = steps[trial % 5];
    const etk::lut::Samples s = etk::lut::dense_samples(Function::gelu, lo, hi, step);
    INFO("[" << lo << ", " << hi << ") step " << step);
    REQUIRE(s.size() >= 1);
    for (std::size_t i = 0; i < s.size(); ++i) {
      REQUIRE(s.x()[i] == lo + static_cast<double>(i) * step);  // bit for bit
      REQUIRE(s.x()[i] < hi);
    }
    CHECK(lo + static_cast<double>(s.size()) * step >= hi);  // the next point is not below hi
  }
}

TEST_CASE("dense_samples is not np.arange: the reference trainer's GELU grid differs from it") {
  // The j = 0 GELU grid: [-4, 4) at 0.01. numpy's delta is RN(RN(-4 + 0.01) + 4), not
  // 0.01, so its points drift from lo + i * 0.01 by a few ulps.
  const etk::lut::Samples s = etk::lut::dense_samples(Function::gelu, -4.0, 4.0, 0.01);
  const std::vector<double> a = np_arange(-4.0, 4.0, 0.01);
  CHECK((-4.0 + 0.01) + 4.0 != 0.01);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < std::min(a.size(), s.size()); ++i) differ += a[i] != s.x()[i];
  INFO("points that differ from np.arange: " << differ << " of " << s.size());
  CHECK(differ > 0);
}

TEST_CASE("dense_samples rejects bad ranges and steps") {
  CHECK_THROWS_AS(etk::lut::dense_samples(Function::gelu, 1.0, 1.0), etk::invalid_argument);
  CHECK_THROWS_AS(etk::lut::dense_samples(Function::gelu, 0.0, 1.0, 0.0), etk::invalid_argument);
  CHECK_THROWS_AS(etk::lut::dense_samples(Function::gelu, 0.0, 1.0, -0.1), etk::invalid_argument);
  CHECK_THROWS_AS(etk::lut::dense_samples(Function::gelu, 0.0, 1.0, std::nan("")), etk::invalid_argument);
  CHECK_THROWS_AS(etk::lut::dense_samples(Function::gelu, 0.0, 1e9, 1e-3), etk::invalid_argument);
}
