// etk:isa-variants
// Tests of etk/quant/two_scaled.hpp: V-2SF on concentrated softmax rows (the bar: >= 10x
// lower MSE than plain 8-bit), per-value region selection vs the add-both-branches flaw,
// codes round-trip, codes of both layouts bit-exact vs the reference twin (region plane
// included), round-trip error bounds, the paper's layout (b-bit payload + region plane),
// the post-GELU negative range, the split search is exact, O-2SF and FQ-ViT PTF on
// LayerNorm-like data with outlier channels, bad input.
#include <catch2/catch.hpp>
#include <etk/quant/reference/two_scaled.hpp>
#include <etk/quant/two_scaled.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "support/quant_util.hpp"

using etk::TwoScaleKind;
using etk::TwoScaleLayout;
using etk::TwoScaleParams;
using quant_test::cview;

namespace {

// Concentrated attention rows: `peaks` dominant keys (logit + boost) over a tail of
// logits with standard deviation `spread`, so most probabilities are small.
etk::RowMatrixXf softmax_rows(std::ptrdiff_t rows, std::ptrdiff_t len, std::uint32_t seed, int peaks = 1,
                              float spread = 1.0f, float boost = 6.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> logit(0.0f, spread);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(len) - 1);
  etk::RowMatrixXf p(rows, len);
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    for (std::ptrdiff_t c = 0; c < len; ++c) p(r, c) = logit(gen);
    for (int t = 0; t < peaks; ++t) p(r, pick(gen)) += boost;
    p.row(r) = (p.row(r).array() - p.row(r).maxCoeff()).exp();
    p.row(r) /= p.row(r).sum();
  }
  return p;
}

double mse(const etk::RowMatrixXf& a, const etk::RowMatrixXf& b) { return (a - b).array().square().mean(); }

// Plain b-bit unsigned min-max quantization of non-negative data (b up to 9: the paper
// layout's stored bits; the uniform quantizer itself stops at 8, so this is the plain
// formula in double).
double plain_mse(const etk::RowMatrixXf& x, int bits) {
  const double step = static_cast<double>(x.maxCoeff()) / ((1 << bits) - 1);
  double e = 0;
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double d = x.data()[i] - std::nearbyint(x.data()[i] / step) * step;
    e += d * d;
  }
  return e / static_cast<double>(x.size());
}

}  // namespace

TEST_CASE("V-2SF 8-bit beats plain 8-bit by >= 10x MSE on concentrated softmax rows") {
  const etk::RowMatrixXf calib = softmax_rows(64, 197, 1);
  const etk::RowMatrixXf test = softmax_rows(64, 197, 2);
  for (int bits : {8, 6, 4}) {
    const TwoScaleParams p = etk::two_scale_calibrate(cview(calib), bits, TwoScaleKind::post_softmax);
    const double two = mse(test, etk::two_scale_fake_quantize(cview(test), p));
    const double plain = plain_mse(test, bits);
    // The flawed variant: both branches' outputs added for every value.
    const etk::RowMatrixXf both =
        etk::fake_quantize(cview(test), p.small_grid()) + etk::fake_quantize(cview(test), p.large_grid());
    const double flawed = mse(test, both);
    INFO("bits " << bits << " r " << p.ratio_log2 << " split " << p.split << " two-scaled " << two << " plain "
                 << plain << " add-both " << flawed);
    if (bits >= 6) CHECK(two < plain);
    if (bits == 8) CHECK(flawed > plain);  // the claim is about uint8
    if (bits == 8) CHECK(plain / two >= 10.0);
    WARN("softmax rows (1 peak, tail std 1) " << bits << "-bit: plain/two-scaled MSE ratio " << plain / two);
  }
  // Less concentrated rows (2 peaks, tail std 2): reported, asserted only to win.
  const etk::RowMatrixXf calib2 = softmax_rows(64, 197, 3, 2, 2.0f, 8.0f);
  const etk::RowMatrixXf test2 = softmax_rows(64, 197, 4, 2, 2.0f, 8.0f);
  const TwoScaleParams p2 = etk::two_scale_calibrate(cview(calib2), 8, TwoScaleKind::post_softmax);
  const double ratio2 = plain_mse(test2, 8) / mse(test2, etk::two_scale_fake_quantize(cview(test2), p2));
  CHECK(ratio2 > 1.0);
  WARN("softmax rows (2 peaks, tail std 2) 8-bit: plain/two-scaled MSE ratio " << ratio2);
}

TEST_CASE("V-2SF codes round-trip to the fake-quantized values, region bit on top") {
  const etk::RowMatrixXf x = softmax_rows(5, 33, 3);
  for (int bits : {3, 4, 8})
    for (bool gelu : {false, true}) {
      TwoScaleParams p;
      p.bits = bits;
      p.scale = 1.0f / static_cast<float>((1 << (bits - 1)) - 1);
      p.ratio_log2 = 3;
      p.split = 0.05f;
      p.small_zero_point = gelu ? 3 : 0;
      etk::RowMatrixXf y = x;
      if (gelu) y.col(0).setConstant(-0.01f);
      const auto q = etk::two_scale_quantize(cview(y), p);
      REQUIRE(q.maxCoeff() < (1 << bits));
      for (Eigen::Index r = 0; r < y.rows(); ++r)
        for (Eigen::Index c = 0; c < y.cols(); ++c) REQUIRE(((q(r, c) >> (bits - 1)) == 1) == (y(r, c) >= p.split));
      CHECK((etk::two_scale_dequantize(cview(q), p).array() == etk::two_scale_fake_quantize(cview(y), p).array()).all());
    }
}

namespace {
// Adversarial values for p: ties at half steps of both grids, the split and its neighbours,
// the ends of both ranges and beyond, negatives (post-GELU), plus softmax-like values.
etk::RowMatrixXf adversarial(std::ptrdiff_t rows, std::ptrdiff_t cols, const TwoScaleParams& p, std::mt19937& gen) {
  const int qmax = (1 << p.payload_bits()) - 1;
  std::uniform_int_distribution<int> code(-2, qmax + 2), kind(0, 5);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  etk::RowMatrixXf x(rows, cols);
  for (std::ptrdiff_t i = 0; i < x.size(); ++i) {
    const float half = static_cast<float>(code(gen)) + 0.5f;
    switch (kind(gen)) {
      case 0: x.data()[i] = (half - static_cast<float>(p.small_zero_point)) * p.small_scale(); break;
      case 1: x.data()[i] = half * p.scale; break;
      case 2: x.data()[i] = std::nextafter(p.split, kind(gen) < 3 ? -1.0f : 2.0f); break;
      case 3: x.data()[i] = p.split; break;
      case 4: x.data()[i] = std::pow(unit(gen), 4.0f) * p.scale * static_cast<float>(qmax + 3); break;
      default: x.data()[i] = (unit(gen) - 0.1f) * 0.2f;
    }
  }
  return x;
}

TwoScaleParams random_params(TwoScaleLayout layout, int bits, std::mt19937& gen) {
  TwoScaleParams p;
  p.layout = layout;
  p.bits = bits;
  p.ratio_log2 = std::uniform_int_distribution<int>(1, 8)(gen);
  p.scale = 1.0f / static_cast<float>((1 << p.payload_bits()) - 1) * std::uniform_real_distribution<float>(0.5f, 1.0f)(gen);
  p.split = std::uniform_real_distribution<float>(0.0f, 1.0f)(gen) * p.small_scale() * static_cast<float>(1 << p.payload_bits());
  p.small_zero_point = std::uniform_int_distribution<int>(0, 1)(gen) ? 0 : std::uniform_int_distribution<int>(1, 3)(gen);
  return p;
}
}  // namespace

TEST_CASE("V-2SF codes of both layouts match the reference twin bit for bit") {
  std::mt19937 gen(21);
  for (auto layout : {TwoScaleLayout::shared_code, TwoScaleLayout::region_plane})
    for (int bits = layout == TwoScaleLayout::shared_code ? 3 : 2; bits <= 8; ++bits)
      for (std::ptrdiff_t cols : quant_test::awkward_sizes()) {
        const std::ptrdiff_t rows = std::uniform_int_distribution<std::ptrdiff_t>(1, 5)(gen);
        const TwoScaleParams p = random_params(layout, bits, gen);
        const etk::RowMatrixXf x = adversarial(rows, cols, p, gen);
        const int k = p.payload_bits();
        etk::RowMatrixXf deq;
        std::vector<etk::reference::TwoScaleCode> got;
        if (layout == TwoScaleLayout::shared_code) {
          const auto q = etk::two_scale_quantize(cview(x), p);
          for (std::ptrdiff_t i = 0; i < q.size(); ++i) got.push_back({(q.data()[i] >> k) != 0, q.data()[i] & ((1 << k) - 1)});
          deq = etk::two_scale_dequantize(cview(q), p);
        } else {
          const etk::TwoScaleCodes q = etk::two_scale_quantize_planes(cview(x), p);
          REQUIRE(q.payload.rows() == rows);
          REQUIRE(q.payload.cols() == cols);
          REQUIRE(q.region.size() == static_cast<std::size_t>((rows * cols + 7) / 8));
          // Plane layout, read bit by bit: value i's bit is bit i % 8 of byte i / 8; the
          // unused high bits of the last byte are zero.
          for (std::ptrdiff_t i = 0; i < q.payload.size(); ++i)
            got.push_back({((q.region[static_cast<std::size_t>(i / 8)] >> (i % 8)) & 1) != 0, q.payload.data()[i]});
          if ((rows * cols) % 8 != 0) CHECK((q.region.back() >> ((rows * cols) % 8)) == 0);
          deq = etk::two_scale_dequantize(q, p);
        }
        const etk::RowMatrixXf fake = etk::two_scale_fake_quantize(cview(x), p);
        for (std::ptrdiff_t i = 0; i < x.size(); ++i) {
          const etk::reference::TwoScaleCode want = etk::reference::two_scale_quantize_value(x.data()[i], p);
          INFO("layout " << static_cast<int>(layout) << " bits " << bits << " x " << x.data()[i] << " split " << p.split);
          REQUIRE(got[static_cast<std::size_t>(i)].large == want.large);
          REQUIRE(got[static_cast<std::size_t>(i)].payload == want.payload);
          REQUIRE(got[static_cast<std::size_t>(i)].payload < (1 << k));
          // Dequantization is one float multiply everywhere: equal bits.
          REQUIRE(deq.data()[i] == etk::reference::two_scale_dequantize_value(want, p));
          REQUIRE(fake.data()[i] == deq.data()[i]);
        }
      }
}

TEST_CASE("V-2SF round trip: half a step of the value's region inside its range, the clamp outside") {
  std::mt19937 gen(22);
  for (auto layout : {TwoScaleLayout::shared_code, TwoScaleLayout::region_plane})
    for (int bits : {4, 6, 8}) {
      const TwoScaleParams p = random_params(layout, bits, gen);
      const etk::RowMatrixXf x = adversarial(7, 65, p, gen);
      const etk::RowMatrixXf y = etk::two_scale_fake_quantize(cview(x), p);
      const double qmax = (1 << p.payload_bits()) - 1;
      for (std::ptrdiff_t i = 0; i < x.size(); ++i) {
        const double v = x.data()[i];
        const bool large = !(x.data()[i] < p.split);
        const double s = large ? p.scale : p.small_scale();
        const double lo = large ? 0.0 : -p.small_zero_point * s;
        const double hi = lo + qmax * s;
        INFO("bits " << bits << " x " << v << " large " << large);
        // The code rounds the exact quotient (reference: double, never mistaken near a
        // half), so the exact level L = (q - zp) s is within s/2 of x; the output is
        // fl(L), one float multiply: |fl(L) - L| <= 2^-24 |L|.
        const double tol = s / 2 + std::ldexp(std::abs(static_cast<double>(y.data()[i])), -24);
        if (v < lo) REQUIRE(y.data()[i] == static_cast<float>(lo));
        else if (v > hi) REQUIRE(y.data()[i] == static_cast<float>(hi));
        else REQUIRE(std::abs(v - y.data()[i]) <= tol);
      }
    }
}

TEST_CASE("the paper's layout: b-bit payload + region bit") {
  const etk::RowMatrixXf calib = softmax_rows(64, 197, 1);
  const etk::RowMatrixXf test = softmax_rows(64, 197, 2);
  for (int bits : {8, 6, 4}) {
    const TwoScaleParams plane = etk::two_scale_calibrate(cview(calib), bits, TwoScaleKind::post_softmax, TwoScaleLayout::region_plane);
    const TwoScaleParams shared = etk::two_scale_calibrate(cview(calib), bits, TwoScaleKind::post_softmax);
    REQUIRE(plane.layout == TwoScaleLayout::region_plane);
    REQUIRE(plane.payload_bits() == bits);
    REQUIRE(plane.stored_bits() == bits + 1);
    REQUIRE(shared.stored_bits() == bits);
    const double e_plane = mse(test, etk::two_scale_fake_quantize(cview(test), plane));
    const double e_shared = mse(test, etk::two_scale_fake_quantize(cview(test), shared));
    INFO("bits " << bits << " plane " << e_plane << " shared " << e_shared << " plain " << plain_mse(test, bits) << " plain+1 "
                 << plain_mse(test, bits + 1));
    // One more payload bit halves both steps: about 4x less error than the shared layout.
    CHECK(e_plane < e_shared / 2);
    // The region plane at b payload bits is the shared code at b+1 bits with the region bit
    // moved out: same grids, same calibration, same values.
    if (bits < 8) {
      const TwoScaleParams wider = etk::two_scale_calibrate(cview(calib), bits + 1, TwoScaleKind::post_softmax);
      CHECK(wider.payload_bits() == plane.payload_bits());
      CHECK(wider.scale == plane.scale);
      CHECK(wider.ratio_log2 == plane.ratio_log2);
      CHECK(wider.split == plane.split);
      CHECK((etk::two_scale_fake_quantize(cview(test), wider).array() == etk::two_scale_fake_quantize(cview(test), plane).array()).all());
    }
    // At equal stored bits it still beats plain uniform on concentrated rows.
    CHECK(e_plane < plain_mse(test, bits + 1));
    WARN("softmax rows (1 peak, tail std 1) paper layout " << bits << "+1 bits: plain " << bits << "-bit / two-scaled "
         << plain_mse(test, bits) / e_plane << ", plain " << bits + 1 << "-bit / two-scaled " << plain_mse(test, bits + 1) / e_plane);
  }
}

TEST_CASE("post-GELU V-2SF keeps the negative range and beats plain asymmetric 8-bit") {
  etk::RowMatrixXf x = quant_test::gaussian(64, 256, 9, 1.5f);
  x = (x.array() * 0.5f * (1.0f + (x.array() / std::sqrt(2.0f)).unaryExpr([](float v) { return std::erf(v); })));
  const TwoScaleParams p = etk::two_scale_calibrate(cview(x), 8, TwoScaleKind::post_gelu);
  const etk::RowMatrixXf y = etk::two_scale_fake_quantize(cview(x), p);
  const double two = mse(x, y);
  const etk::QuantParams plain = etk::QuantParams::from_range(x.minCoeff(), x.maxCoeff(), 8, false);
  const double uni = mse(x, etk::fake_quantize(cview(x), plain));
  INFO("two-scaled " << two << " plain " << uni);
  CHECK(two < uni);
  // Negative values keep their sign (the small region is signed).
  const Eigen::Index neg = (x.array() < -0.05f).count();
  REQUIRE(neg > 0);
  CHECK(((x.array() < -0.05f) && (y.array() < 0.0f)).count() == neg);
}

TEST_CASE("the split search is exact for the chosen scales") {
  const etk::RowMatrixXf x = softmax_rows(4, 50, 5);
  const TwoScaleParams best = etk::two_scale_calibrate(cview(x), 6, TwoScaleKind::post_softmax);
  const double e = mse(x, etk::two_scale_fake_quantize(cview(x), best));
  // Every other split at a data value (and beyond) with the same scales is no better.
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    TwoScaleParams q = best;
    q.split = x.data()[i];
    REQUIRE(e <= mse(x, etk::two_scale_fake_quantize(cview(x), q)) * (1 + 1e-12));
  }
}

TEST_CASE("O-2SF and FQ-ViT PTF on LayerNorm-like data with outlier channels") {
  // 192 channels, 8 of them with a 40x larger range and an offset.
  etk::RowMatrixXf x = quant_test::gaussian(128, 192, 12, 0.5f);
  for (int c = 0; c < 192; c += 24) x.col(c) = x.col(c) * 40.0f + etk::RowMatrixXf::Constant(128, 1, 5.0f);
  const int bits = 8;
  const double per_tensor = mse(x, etk::fake_quantize(cview(x), etk::QuantParams::from_range(x.minCoeff(), x.maxCoeff(), bits, false)));
  const etk::ChannelPow2Params o2 = etk::o2sf_calibrate(cview(x), bits);
  const etk::ChannelPow2Params ptf = etk::fqvit_ptf_calibrate(cview(x), bits);
  const double e_o2 = mse(x, etk::fake_quantize(cview(x), o2.quant_params()));
  const double e_ptf = mse(x, etk::fake_quantize(cview(x), ptf.quant_params()));
  INFO("per-tensor " << per_tensor << " O-2SF " << e_o2 << " PTF " << e_ptf);
  // Two scales only: outliers get the large one, the rest the small.
  int outliers = 0;
  for (int e : o2.exponent) outliers += e != 0;
  CHECK(outliers == 8);
  for (int c = 0; c < 192; c += 24) CHECK(o2.exponent[static_cast<std::size_t>(c)] != 0);
  CHECK(e_o2 < per_tensor / 10);
  CHECK(e_ptf < per_tensor);
  // PTF's 2^3 cap cannot reach a 40x ratio; O-2SF's searched ratio can.
  CHECK(e_o2 < e_ptf);
  WARN("LayerNorm-like 8-bit MSE: per-tensor " << per_tensor << ", FQ-ViT PTF " << e_ptf << ", O-2SF " << e_o2);
}

TEST_CASE("two-scaled quantizers reject bad input") {
  const etk::RowMatrixXf x = softmax_rows(2, 8, 1);
  for (int bits : {2, 9}) CHECK_THROWS_WITH(etk::two_scale_calibrate(cview(x), bits, TwoScaleKind::post_softmax), Catch::Contains("bits"));
  TwoScaleParams p;
  p.ratio_log2 = 0;
  CHECK_THROWS_WITH(etk::two_scale_fake_quantize(cview(x), p), Catch::Contains("ratio_log2"));
  p = TwoScaleParams{};
  p.scale = -1;
  CHECK_THROWS_WITH(etk::two_scale_quantize(cview(x), p), Catch::Contains("scale"));
  p = TwoScaleParams{};
  p.split = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::two_scale_fake_quantize(cview(x), p), Catch::Contains("split"));
  etk::RowMatrixXf bad = x;
  bad(1, 1) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(etk::two_scale_calibrate(cview(bad), 8, TwoScaleKind::post_softmax), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(etk::o2sf_calibrate(cview(bad), 8), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(etk::fqvit_ptf_calibrate(cview(bad), 8), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(etk::two_scale_calibrate(etk::matrix_view(static_cast<const float*>(x.data()), 0, 8, 8), 8, TwoScaleKind::post_softmax),
                    Catch::Contains("empty"));
  const etk::RowMatrixXf neg = -x;
  CHECK_THROWS_WITH(etk::two_scale_calibrate(cview(neg), 8, TwoScaleKind::post_softmax), Catch::Contains("positive"));
  etk::RowMatrix<std::uint8_t> codes(1, 1);
  codes << 255;
  p = TwoScaleParams{};
  p.bits = 4;
  CHECK_THROWS_WITH(etk::two_scale_dequantize(cview(codes), p), Catch::Contains("bits"));
  CHECK_THROWS_WITH(etk::o2sf_calibrate(cview(x), 8, 0), Catch::Contains("max_ratio_log2"));
  // Layouts: bits per layout, the right entry points, a consistent region plane.
  CHECK_THROWS_WITH(etk::two_scale_calibrate(cview(x), 2, TwoScaleKind::post_softmax), Catch::Contains("bits"));
  for (int bits : {1, 9})
    CHECK_THROWS_WITH(etk::two_scale_calibrate(cview(x), bits, TwoScaleKind::post_softmax, etk::TwoScaleLayout::region_plane),
                      Catch::Contains("bits"));
  p = TwoScaleParams{};
  p.layout = etk::TwoScaleLayout::region_plane;
  p.bits = 9;
  CHECK_THROWS_WITH(etk::two_scale_fake_quantize(cview(x), p), Catch::Contains("bits"));
  p.bits = 4;
  CHECK_THROWS_WITH(etk::two_scale_quantize(cview(x), p), Catch::Contains("layout"));
  CHECK_THROWS_WITH(etk::two_scale_dequantize(cview(codes), p), Catch::Contains("layout"));
  etk::TwoScaleCodes planes = etk::two_scale_quantize_planes(cview(x), p);
  etk::TwoScaleCodes short_plane = planes;
  short_plane.region.pop_back();
  CHECK_THROWS_WITH(etk::two_scale_dequantize(short_plane, p), Catch::Contains("region plane"));
  etk::TwoScaleCodes wide = planes;
  wide.payload(0, 0) = 16;
  CHECK_THROWS_WITH(etk::two_scale_dequantize(wide, p), Catch::Contains("bits"));
  CHECK_THROWS_WITH(etk::two_scale_dequantize(etk::TwoScaleCodes{}, p), Catch::Contains("empty"));
  CHECK_THROWS_WITH(etk::two_scale_quantize_planes(cview(bad), p), Catch::Contains("non-finite"));
  p.layout = etk::TwoScaleLayout::shared_code;
  CHECK_THROWS_WITH(etk::two_scale_quantize_planes(cview(x), p), Catch::Contains("layout"));
  CHECK_THROWS_WITH(etk::two_scale_dequantize(planes, p), Catch::Contains("layout"));
}
