// etk:isa-variants etk:threads
// Tests of etk/quant/uniform.hpp: the fast quantizer returns the reference's codes bit for
// bit (integers: no tolerance), round trips are within half a step inside the range and
// exactly the clamp outside, ties go to even, bad input throws.
#include <catch2/catch.hpp>
#include <etk/quant/reference/uniform.hpp>
#include <etk/quant/uniform.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "support/paths.hpp"
#include "support/quant_util.hpp"

using etk::QuantParams;
using quant_test::cview;
using quant_test::view;

namespace {

// A grid with random scale / zero point per channel.
QuantParams random_params(int bits, bool is_signed, bool narrow, int axis, std::ptrdiff_t rows,
                          std::ptrdiff_t cols, std::mt19937& gen) {
  QuantParams p;
  p.bits = bits;
  p.is_signed = is_signed;
  p.narrow_range = narrow && is_signed;
  p.axis = axis;
  const std::ptrdiff_t ch = QuantParams::channels_for(axis, rows, cols);
  std::uniform_real_distribution<float> ls(-6.0f, 0.0f);
  std::uniform_int_distribution<int> z(p.qmin(), p.qmax());
  p.scale.clear();
  p.zero_point.clear();
  for (std::ptrdiff_t c = 0; c < ch; ++c) {
    p.scale.push_back(std::exp2(ls(gen)) * (1.0f + 0.37f * static_cast<float>(c % 3)));
    p.zero_point.push_back(c % 2 == 0 ? z(gen) : (is_signed ? 0 : p.qmax() / 2));
  }
  return p;
}

// Values spread over and beyond the grid, with exact ties (k + 1/2) * s, near-ties
// (next floats around them) and +-Inf mixed in.
etk::RowMatrixXf adversarial(const QuantParams& p, std::ptrdiff_t rows, std::ptrdiff_t cols,
                             std::mt19937& gen) {
  etk::RowMatrixXf x(rows, cols);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_real_distribution<double> u(-1.2, 1.2);
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      const std::size_t ch = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
      const double s = p.scale[ch];
      const double span = (static_cast<double>(p.qmax()) - p.qmin()) * s;
      const double centre = (0.5 * (p.qmax() + p.qmin()) - p.zero_point[ch]) * s;
      const int k = static_cast<int>(std::floor((centre + u(gen) * span / 2) / s));
      const float tie = static_cast<float>((k + 0.5) * s);
      switch (kind(gen)) {
        case 0: x(r, c) = tie; break;
        case 1: x(r, c) = std::nextafter(tie, std::numeric_limits<float>::infinity()); break;
        case 2: x(r, c) = std::nextafter(tie, -std::numeric_limits<float>::infinity()); break;
        case 3: x(r, c) = (c % 2 ? 1 : -1) * std::numeric_limits<float>::infinity(); break;
        default: x(r, c) = static_cast<float>(centre + u(gen) * span / 2);
      }
    }
  return x;
}

template <typename T>
void compare_with_reference(int bits, bool is_signed, bool narrow) {
  std::mt19937 gen(1234u + static_cast<unsigned>(bits) * 7 + is_signed * 3 + narrow);
  for (std::ptrdiff_t rows : {1, 3, 17})
    for (std::ptrdiff_t cols : quant_test::awkward_sizes())
      for (int axis : {-1, 0, 1}) {
        const QuantParams p = random_params(bits, is_signed, narrow, axis, rows, cols, gen);
        // A strided input view: the padding columns hold NaN, which must never be read.
        etk::RowMatrixXf buf(rows, cols + 3);
        buf.setConstant(std::numeric_limits<float>::quiet_NaN());
        buf.leftCols(cols) = adversarial(p, rows, cols, gen);
        const auto x = etk::matrix_view(static_cast<const float*>(buf.data()), rows, cols, cols + 3);
        etk::RowMatrix<T> fast(rows, cols), ref(rows, cols);
        etk::quantize<T>(x, p, view(fast));
        etk::reference::quantize(x.data(), rows, cols, cols + 3, p, ref.data(), cols);
        INFO("bits " << bits << " signed " << is_signed << " axis " << axis << " shape " << rows
                     << "x" << cols);
        REQUIRE((fast.array() == ref.array()).all());

        etk::RowMatrixXf deq(rows, cols), deq_ref(rows, cols), fq(rows, cols);
        etk::dequantize<T>(cview(fast), p, view(deq));
        etk::reference::dequantize(ref.data(), rows, cols, cols, p, deq_ref.data(), cols);
        etk::fake_quantize(x, p, view(fq));
        // Dequantization is one float multiply in both: identical bits (NaN-free here).
        REQUIRE((deq.array() == deq_ref.array()).all());
        REQUIRE((fq.array() == deq.array()).all());

        // The bar: inside the range |x - (q - zp) s| <= s / 2 exactly (computed in double,
        // where (q - zp) * s and the difference are exact for these magnitudes); outside,
        // the code is the clamp; at exact ties q - zp is even.
        for (std::ptrdiff_t r = 0; r < rows; ++r)
          for (std::ptrdiff_t c = 0; c < cols; ++c) {
            const std::size_t ch = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
            const double s = p.scale[ch];
            const double xv = x(r, c);
            const std::int32_t q = fast(r, c), zp = p.zero_point[ch];
            const double lo = (p.qmin() - zp) * s, hi = (p.qmax() - zp) * s;
            if (xv <= lo) {
              REQUIRE(q == p.qmin());
            } else if (xv >= hi) {
              REQUIRE(q == p.qmax());
            } else {
              const double err = std::fabs(xv - (q - zp) * s);
              REQUIRE(err <= s / 2);
              if (err == s / 2) REQUIRE((q - zp) % 2 == 0);
            }
          }
      }
}

}  // namespace

TEST_CASE("quantize matches the reference bit for bit, round trip within half a step") {
  paths::for_each([&](etk::Isa) {
  for (int bits = 2; bits <= 8; ++bits) {
    compare_with_reference<std::int8_t>(bits, true, false);
    compare_with_reference<std::int8_t>(bits, true, true);
    compare_with_reference<std::uint8_t>(bits, false, false);
  }
  compare_with_reference<std::int16_t>(16, true, false);
  compare_with_reference<std::uint16_t>(16, false, false);
  compare_with_reference<std::int16_t>(5, true, false);
  });
}

TEST_CASE("ties at .5 round to even, in both directions and around the zero point") {
  const QuantParams p = QuantParams::per_tensor(0.25f, 3, 8, true);
  etk::RowMatrixXf x(1, 6);
  // x / s = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5  ->  0, 2, 2, 0, -2, -2 (plus zp 3).
  x << 0.125f, 0.375f, 0.625f, -0.125f, -0.375f, -0.625f;
  const auto q = etk::quantize<std::int8_t>(cview(x), p);
  const std::int8_t want[] = {3, 5, 5, 3, 1, 1};
  for (int i = 0; i < 6; ++i) CHECK(q(0, i) == want[i]);
}

TEST_CASE("a float quotient that rounds onto a half-integer is resolved by the exact residual") {
  // Found by search: x is the float nearest to (k + 1/2) s but not equal to it, and the
  // float quotient x / s rounds onto k + 1/2 exactly. The real quotient is off the tie,
  // so the correct code is its nearest integer, not the even neighbour.
  struct Case { float s, x; int want; };
  const Case cases[] = {{0x1.b8673p+0f, -0x1.e1b0dcp+4f, -17},     // real -17.4999997
                        {0x1.20ccc4p+0f, -0x1.05b992p+4f, -15}};   // real -14.5000003
  for (const Case& c : cases) {
    const QuantParams p = QuantParams::per_tensor(c.s, 0, 8, true);
    etk::RowMatrixXf x(1, 1);
    x << c.x;
    const volatile float s = c.s;
    CHECK(std::fabs(c.x / s - std::nearbyint(c.x / s)) == 0.5f);  // the float quotient is a tie
    CHECK(etk::quantize<std::int8_t>(cview(x), p)(0, 0) == c.want);
    std::int8_t ref = 0;
    etk::reference::quantize(x.data(), 1, 1, 1, p, &ref, 1);
    CHECK(ref == c.want);
  }
}

// Fast codes (per tensor, per row through the 1-D runs, per column through the column
// kernel) and fake-quantized values against the reference, for the values x of one row.
template <typename T>
void check_all_paths(const std::vector<float>& values, const QuantParams& grid) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(values.size());
  const auto x = etk::matrix_view(values.data(), 1, n, n);
  etk::RowMatrix<T> ref(1, n);
  etk::reference::quantize(values.data(), 1, n, n, grid, ref.data(), n);
  etk::RowMatrixXf fq_ref(1, n);
  etk::reference::fake_quantize(values.data(), 1, n, n, grid, fq_ref.data(), n);
  // The same values as a [n / w, w] matrix with one (equal) grid per column, and per row.
  const std::ptrdiff_t w = 67, rows = n / w;
  const auto xm = etk::matrix_view(values.data(), rows, w, w);
  QuantParams cols = grid, per_row = grid;
  cols.axis = 1;
  cols.scale.assign(static_cast<std::size_t>(w), grid.scale[0]);
  cols.zero_point.assign(static_cast<std::size_t>(w), grid.zero_point[0]);
  per_row.axis = 0;
  per_row.scale.assign(static_cast<std::size_t>(rows), grid.scale[0]);
  per_row.zero_point.assign(static_cast<std::size_t>(rows), grid.zero_point[0]);
  INFO("scale " << grid.scale[0] << " (" << std::hexfloat << grid.scale[0] << std::defaultfloat
                << "), zero point " << grid.zero_point[0] << ", bits " << grid.bits);
  const etk::RowMatrix<T> fast = etk::quantize<T>(x, grid);
  REQUIRE((fast.array() == ref.array()).all());
  const etk::RowMatrixXf fq = etk::fake_quantize(x, grid);
  REQUIRE((fq.array() == fq_ref.array()).all());
  const etk::RowMatrix<T> by_col = etk::quantize<T>(xm, cols), by_row = etk::quantize<T>(xm, per_row);
  const etk::RowMatrixXf fq_col = etk::fake_quantize(xm, cols);
  for (std::ptrdiff_t i = 0; i < rows * w; ++i) {
    REQUIRE(by_col.data()[i] == ref.data()[i]);
    REQUIRE(by_row.data()[i] == ref.data()[i]);
    REQUIRE(fq_col.data()[i] == fq_ref.data()[i]);
  }
}

// The 2 * half + 1 consecutive floats centred on the float nearest to v (finite ones only).
void window(double v, int half, std::vector<float>& out) {
  float f = static_cast<float>(v);
  if (!std::isfinite(f)) return;
  for (int i = 0; i < half; ++i) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  for (int i = 0; i <= 2 * half; ++i, f = std::nextafter(f, std::numeric_limits<float>::infinity()))
    if (std::isfinite(f)) out.push_back(f);
}

// Scales the certified estimate has to survive: powers of two (exact reciprocals), the
// searched tie cases, the smallest normals (h = s/2 subnormal), huge scales whose
// reciprocal is subnormal (a poor estimate: many exact-path lanes) and odd mantissas.
const std::vector<float>& hard_scales() {
  static const std::vector<float> s = {0.25f, 1.0f, 0x1p-20f, 0.1f, 1.0f / 3.0f, 0x1.b8673p+0f,
                                       0x1.20ccc4p+0f, 0x1.fffffep-1f, 0x1.000002p+0f,
                                       std::numeric_limits<float>::min(), 0x1.800002p-126f,
                                       0x1.fffffep-120f, 0x1.3p+100f, 0x1p+127f,
                                       std::numeric_limits<float>::max(), 0x1.5555p-60f};
  return s;
}

TEST_CASE("dense sweeps: every float around ties, clamp edges and binade edges, hard scales") {
  // For each scale and grid: windows of 2 * 2048 + 1 consecutive floats centred on ties
  // (k + 1/2) s near 0, inside the grid and at its clamp edges, on the clamp edges
  // themselves, on the 2^22 limit of the SIMD form, and on powers of two (binade edges
  // of x, and of x / s when s is a power of two). The windows hold near-ties on both
  // sides of every tie (the float quotient can land on k + 1/2 while the real one is off).
  struct Grid { int bits; bool is_signed; std::int32_t zp; };
  const Grid grids[] = {{8, true, 0}, {8, false, 77}, {4, false, 3}, {16, true, -1000}, {2, true, -1}};
  for (float s : hard_scales())
    for (const Grid& g : grids) {
      QuantParams p = QuantParams::per_tensor(s, g.zp, g.bits, g.is_signed);
      const double lo = static_cast<double>(p.qmin()) - g.zp, hi = static_cast<double>(p.qmax()) - g.zp;
      std::vector<float> x;
      for (double q : {0.5, -0.5, 1.5, -1.5, 2.5, 7.5, lo - 0.5, lo + 0.5, hi - 0.5, hi + 0.5, lo, hi,
                       lo - 1, hi + 1, 4194303.5, -4194304.5, 4194304.0, 16777216.0})
        window(q * s, 2048, x);
      for (int e = -6; e <= 18; e += 3) window(std::ldexp(1.0, e) * s, 64, x);
      for (int e = -149; e <= 127; e += 23) window(std::ldexp(1.0, e), 64, x);
      x.resize(x.size() / 67 * 67);
      if (g.bits == 16)
        check_all_paths<std::int16_t>(x, p);
      else if (g.is_signed)
        check_all_paths<std::int8_t>(x, p);
      else
        check_all_paths<std::uint8_t>(x, p);
    }
}

TEST_CASE("random bit patterns and random scales over the whole float range") {
  paths::for_each([&](etk::Isa) {
  // Any finite x (subnormals, huge values) and any normal scale: x / s spans 2^-300..2^300,
  // so the estimate x * inv underflows, overflows and is far off; all must still agree.
  std::mt19937 gen(2024);
  std::uniform_int_distribution<std::uint32_t> bits_of;
  auto random_float = [&](bool positive_normal) {
    for (;;) {
      const std::uint32_t u = bits_of(gen);
      float f;
      std::memcpy(&f, &u, sizeof f);
      if (!std::isfinite(f)) continue;
      if (positive_normal && !(f >= std::numeric_limits<float>::min())) continue;
      return f;
    }
  };
  for (int trial = 0; trial < 200; ++trial) {
    const float s = random_float(true);
    QuantParams p = QuantParams::per_tensor(s, trial % 7 - 3, 8, true);
    std::vector<float> x(67 * 30);
    // Half random patterns, half near the grid (where the codes are not all clamped).
    std::uniform_real_distribution<double> q(-140.0, 140.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float near = static_cast<float>(q(gen) * s);
      x[i] = (i % 2 == 0 || !std::isfinite(near)) ? random_float(false) : near;
    }
    check_all_paths<std::int8_t>(x, p);
  }
  });
}

TEST_CASE("per-column grids with mixed extreme scales through the column kernel") {
  paths::for_each([&](etk::Isa) {
  // Each column its own scale (from hard_scales) and zero point; values near each column's
  // ties and edges. Widths cover the 64-column strips, 16-lane tails and 1..17 columns;
  // the last shape (over 2^18 values) takes the row-streaming branch.
  std::mt19937 gen(77);
  std::vector<std::pair<std::ptrdiff_t, std::ptrdiff_t>> shapes;
  for (std::ptrdiff_t cols : {1, 5, 16, 17, 63, 64, 65, 130})
    for (std::ptrdiff_t rows : {1, 15, 16, 17, 40}) shapes.emplace_back(rows, cols);
  shapes.emplace_back(620, 437);
  for (const auto& shape : shapes) {
    {
      const std::ptrdiff_t rows = shape.first, cols = shape.second;
      QuantParams p;
      p.bits = 4;
      p.is_signed = false;
      p.axis = 1;
      p.scale.clear();
      p.zero_point.clear();
      std::uniform_int_distribution<int> zp(p.qmin(), p.qmax());
      for (std::ptrdiff_t c = 0; c < cols; ++c) {
        p.scale.push_back(hard_scales()[static_cast<std::size_t>(c) % hard_scales().size()]);
        p.zero_point.push_back(zp(gen));
      }
      std::uniform_int_distribution<int> k(-4, 20);
      std::uniform_int_distribution<int> kind(0, 3);
      etk::RowMatrixXf x(rows, cols);
      for (std::ptrdiff_t r = 0; r < rows; ++r)
        for (std::ptrdiff_t c = 0; c < cols; ++c) {
          const double s = p.scale[static_cast<std::size_t>(c)];
          float v = static_cast<float>((k(gen) - p.zero_point[static_cast<std::size_t>(c)] + 0.5) * s);
          if (!std::isfinite(v)) v = 0.0f;
          const int how = kind(gen);
          if (how == 1) v = std::nextafter(v, std::numeric_limits<float>::infinity());
          if (how == 2) v = std::nextafter(v, -std::numeric_limits<float>::infinity());
          x(r, c) = v;
        }
      etk::RowMatrix<std::uint8_t> fast = etk::quantize<std::uint8_t>(cview(x), p), ref(rows, cols);
      etk::reference::quantize(x.data(), rows, cols, cols, p, ref.data(), cols);
      INFO("rows " << rows << ", cols " << cols);
      REQUIRE((fast.array() == ref.array()).all());
      etk::RowMatrixXf deq(rows, cols), deq_ref(rows, cols);
      etk::dequantize<std::uint8_t>(cview(fast), p, view(deq));
      etk::reference::dequantize(ref.data(), rows, cols, cols, p, deq_ref.data(), cols);
      REQUIRE((deq.array() == deq_ref.array()).all());
    }
  }
  });
}

TEST_CASE("uniform quantizer rejects bad parameters and bad input") {
  const etk::RowMatrixXf x = quant_test::gaussian(4, 5, 1);
  const auto xv = cview(x);
  auto bad = [&](QuantParams p, const char* what) {
    CHECK_THROWS_WITH(etk::quantize<std::int8_t>(xv, p), Catch::Contains(what));
    CHECK_THROWS_AS(etk::fake_quantize(xv, p), etk::invalid_argument);
  };
  QuantParams p = QuantParams::per_tensor(0.1f, 0, 8, true);
  for (int b : {0, 1, 9, 15, 17, 32}) {
    QuantParams q = p;
    q.bits = b;
    bad(q, "bits");
  }
  for (float s : {0.0f, -0.1f, std::numeric_limits<float>::quiet_NaN(),
                  std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min()}) {
    QuantParams q = p;
    q.scale = {s};
    bad(q, "scale");
  }
  for (int axis : {-2, 2, 3}) {
    QuantParams q = p;
    q.axis = axis;
    bad(q, "axis");
  }
  {
    QuantParams q = p;
    q.zero_point = {200};
    bad(q, "zero_point");
  }
  {
    QuantParams q = p;
    q.axis = 0;  // needs 4 scales
    bad(q, "needs 4 scales");
  }
  // 16-bit codes do not fit int8_t.
  CHECK_THROWS_WITH(etk::quantize<std::int8_t>(xv, QuantParams::per_tensor(0.1f, 0, 16, true)),
                    Catch::Contains("code type"));
  // Empty tensor.
  CHECK_THROWS_WITH(etk::quantize<std::int8_t>(etk::matrix_view(x.data(), 0, 5, 5), p),
                    Catch::Contains("empty"));
  // NaN in the data.
  etk::RowMatrixXf y = x;
  y(2, 3) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::quantize<std::int8_t>(cview(y), p), Catch::Contains("NaN"));
}

TEST_CASE("range helpers: symmetric and asymmetric grids represent zero and the range") {
  const QuantParams s = QuantParams::symmetric(2.54f, 8, true);
  CHECK(s.zero_point[0] == 0);
  CHECK(s.qmin() == -127);
  CHECK(s.scale[0] == Approx(0.02f));
  const QuantParams a = QuantParams::from_range(-1.0f, 3.0f, 8, false);
  etk::RowMatrixXf z(1, 1);
  z << 0.0f;
  CHECK(etk::fake_quantize(cview(z), a)(0, 0) == 0.0f);
  CHECK(a.zero_point[0] == 64);
  // Degenerate range gives a usable grid.
  CHECK(QuantParams::symmetric(0.0f, 8).scale[0] == 1.0f);
}

TEST_CASE("quantize, dequantize and fake-quantize give the same bits for any thread count", "[threads]") {
  // 3 x 150000 floats per tensor and per row (tiles of 65536 columns: pieces of rows), and
  // 700 x 131 per column (tiles of 500 whole rows); NaN-free values around the grid.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  struct Shape {
    std::ptrdiff_t rows, cols;
    int axis;
  };
  for (const Shape sh : {Shape{3, 150000, -1}, Shape{3, 150000, 0}, Shape{700, 131, 1}}) {
    etk::RowMatrixXf x(sh.rows, sh.cols);
    for (std::ptrdiff_t i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
    etk::QuantParams p = etk::QuantParams::symmetric(3.0f, 8);
    if (sh.axis >= 0) {
      const std::ptrdiff_t ch = sh.axis == 0 ? sh.rows : sh.cols;
      p.axis = sh.axis;
      p.scale.assign(static_cast<std::size_t>(ch), 0.0f);
      p.zero_point.assign(static_cast<std::size_t>(ch), 0);
      for (std::ptrdiff_t c = 0; c < ch; ++c) p.scale[static_cast<std::size_t>(c)] = 0.01f + 0.001f * float(c % 97);
    }
    const auto xv = etk::matrix_view(static_cast<const float*>(x.data()), sh.rows, sh.cols, sh.cols);
    const etk::RowMatrix<std::int8_t> q1 = etk::quantize<std::int8_t>(xv, p);
    const etk::RowMatrixXf d1 = etk::dequantize<std::int8_t>(etk::matrix_view(static_cast<const std::int8_t*>(q1.data()), sh.rows, sh.cols, sh.cols), p);
    const etk::RowMatrixXf f1 = etk::fake_quantize(xv, p);
    for (int threads : {2, 3}) {
      etk::SimpleThreadPool pool(threads);
      const etk::Context ctx{&pool, nullptr};
      etk::RowMatrix<std::int8_t> q(sh.rows, sh.cols);
      etk::RowMatrixXf d(sh.rows, sh.cols), f(sh.rows, sh.cols);
      etk::quantize<std::int8_t>(xv, p, etk::MatrixView<std::int8_t>(q.data(), sh.rows, sh.cols, Eigen::OuterStride<>(sh.cols)), ctx);
      etk::dequantize<std::int8_t>(etk::matrix_view(static_cast<const std::int8_t*>(q.data()), sh.rows, sh.cols, sh.cols), p,
                                   etk::MatrixView<float>(d.data(), sh.rows, sh.cols, Eigen::OuterStride<>(sh.cols)), ctx);
      etk::fake_quantize(xv, p, etk::MatrixView<float>(f.data(), sh.rows, sh.cols, Eigen::OuterStride<>(sh.cols)), ctx);
      INFO("axis " << sh.axis << " threads " << threads);
      REQUIRE((q.array() == q1.array()).all());
      REQUIRE(std::memcmp(d.data(), d1.data(), sizeof(float) * std::size_t(d.size())) == 0);
      REQUIRE(std::memcmp(f.data(), f1.data(), sizeof(float) * std::size_t(f.size())) == 0);
    }
    // A NaN in any tile is still reported.
    x(sh.rows - 1, sh.cols - 1) = std::nanf("");
    etk::SimpleThreadPool pool(2);
    const etk::Context ctx{&pool, nullptr};
    etk::RowMatrix<std::int8_t> q(sh.rows, sh.cols);
    CHECK_THROWS_WITH(etk::quantize<std::int8_t>(xv, p, etk::MatrixView<std::int8_t>(q.data(), sh.rows, sh.cols, Eigen::OuterStride<>(sh.cols)), ctx),
                      Catch::Contains("NaN"));
  }
}

TEST_CASE("quantize: outputs whose rows overlap, or that partly overlap the input, are rejected") {
  const QuantParams p = QuantParams::symmetric(1.0f, 8);
  etk::RowMatrixXf x = quant_test::gaussian(4, 6, 5);
  std::vector<std::int8_t> codes(64);
  for (std::ptrdiff_t stride : {0, 1, 5}) {
    CHECK_THROWS_WITH(etk::quantize<std::int8_t>(cview(x), p, etk::matrix_view(codes.data(), 4, 6, stride)),
                      Catch::Contains("'q'") && Catch::Contains("overlap"));
    std::vector<float> fq(64);
    CHECK_THROWS_WITH(etk::fake_quantize(cview(x), p, etk::matrix_view(fq.data(), 4, 6, stride)),
                      Catch::Contains("'y'") && Catch::Contains("overlap"));
  }
  // Codes written over the input's own floats; a float output shifted by one element.
  CHECK_THROWS_WITH(etk::quantize<std::int8_t>(cview(x), p, etk::matrix_view(reinterpret_cast<std::int8_t*>(x.data()), 4, 6, 6)),
                    Catch::Contains("overlaps argument 'x'"));
  etk::RowMatrixXf y(5, 6);
  y.topRows(4) = x;
  CHECK_THROWS_WITH(etk::fake_quantize(etk::matrix_view(static_cast<const float*>(y.data()), 4, 6, 6), p,
                                       etk::matrix_view(y.data() + 1, 4, 6, 6)),
                    Catch::Contains("overlaps argument 'x'"));
  // A single output row may have any stride; fake quantization in place is exact.
  CHECK_NOTHROW(etk::quantize<std::int8_t>(etk::matrix_view(static_cast<const float*>(x.data()), 1, 6, 6), p,
                                           etk::matrix_view(codes.data(), 1, 6, 0)));
  const etk::RowMatrixXf want = etk::fake_quantize(cview(x), p);
  etk::fake_quantize(cview(x), p, view(x));
  CHECK(x == want);
  std::vector<float> deq(64);
  const etk::RowMatrix<std::int8_t> q = etk::quantize<std::int8_t>(cview(x), p);
  CHECK_THROWS_WITH(etk::dequantize<std::int8_t>(cview(q), p, etk::matrix_view(deq.data(), 4, 6, 2)),
                    Catch::Contains("'x'"));
}

TEST_CASE("quantize: NaN anywhere (SIMD body, tails, per-column grids) is rejected before any conversion") {
  // The scalar tails and the scalar path store the lowest code for a NaN instead of
  // converting it (a float-to-int conversion of NaN is undefined behaviour).
  for (std::ptrdiff_t cols : {1, 7, 8, 9, 63, 64, 65})
    for (std::ptrdiff_t at : {std::ptrdiff_t(0), cols / 2, cols - 1})
      for (int axis : {-1, 0, 1}) {
        etk::RowMatrixXf x = quant_test::gaussian(3, cols, 11);
        x(1, at) = std::numeric_limits<float>::quiet_NaN();
        QuantParams p = QuantParams::symmetric(2.0f, 8);
        if (axis >= 0) {
          p = QuantParams::stack(std::vector<QuantParams>(static_cast<std::size_t>(axis == 0 ? 3 : cols), p), axis);
        }
        INFO("cols " << cols << " at " << at << " axis " << axis);
        CHECK_THROWS_WITH(etk::quantize<std::uint8_t>(cview(x), QuantParams::from_range(-2.0f, 2.0f, 8, false)),
                          Catch::Contains("NaN"));
        CHECK_THROWS_WITH(etk::quantize<std::int8_t>(cview(x), p), Catch::Contains("NaN"));
        CHECK_THROWS_WITH(etk::fake_quantize(cview(x), p), Catch::Contains("NaN"));
      }
}
