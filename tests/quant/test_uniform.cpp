// etk:isa-variants
// Tests of etk/quant/uniform.hpp: the fast quantizer returns the reference's codes bit for
// bit (integers: no tolerance), round trips are within half a step inside the range and
// exactly the clamp outside, ties go to even, int4 packing round-trips, bad input throws.
#include <catch2/catch.hpp>
#include <etk/quant/reference/uniform.hpp>
#include <etk/quant/uniform.hpp>

#include <cmath>
#include <limits>

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
  for (int bits = 2; bits <= 8; ++bits) {
    compare_with_reference<std::int8_t>(bits, true, false);
    compare_with_reference<std::int8_t>(bits, true, true);
    compare_with_reference<std::uint8_t>(bits, false, false);
  }
  compare_with_reference<std::int16_t>(16, true, false);
  compare_with_reference<std::uint16_t>(16, false, false);
  compare_with_reference<std::int16_t>(5, true, false);
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

TEST_CASE("packed int4 round-trips codes and dequantizes like unpacked codes") {
  std::mt19937 gen(7);
  for (bool is_signed : {true, false})
    for (std::ptrdiff_t cols : {1, 2, 7, 16, 33}) {
      QuantParams p = random_params(4, is_signed, false, 0, 5, cols, gen);
      const etk::RowMatrixXf x = quant_test::gaussian(5, cols, 99, 0.3f);
      const etk::PackedInt4 packed = etk::quantize_int4(cview(x), p);
      CHECK(packed.bytes.size() == static_cast<std::size_t>(5 * ((cols + 1) / 2)));
      const etk::RowMatrixXf a = etk::dequantize(packed, p);
      const etk::RowMatrixXf b = etk::fake_quantize(cview(x), p);
      CHECK((a.array() == b.array()).all());
    }
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
  // A code that does not fit 4 bits.
  etk::RowMatrix<std::int8_t> c(1, 2);
  c << 3, 9;
  CHECK_THROWS_WITH(etk::pack_int4<std::int8_t>(cview(c)), Catch::Contains("4 bits"));
  CHECK_THROWS_WITH(etk::quantize_int4(xv, p), Catch::Contains("bits <= 4"));
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
