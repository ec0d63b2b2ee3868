// The runner's fast kernels against plain double-precision references over odd shapes:
// the GEMM with its bias step (every conv and linear, on etk::gemm_f32) and the
// depthwise conv.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernels.hpp"

using namespace ocr;

namespace {
constexpr double kEps = 1.0 / (1 << 24);  // fp32 unit roundoff
}

TEST_CASE("GEMM with bias matches a double reference", "[ocr][kernels]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int n : {1, 2, 5, 6, 7, 13, 17, 31, 33})
    for (int k : {1, 5, 16, 127, 128, 129, 300})
      for (int out : {1, 15, 16, 17, 31, 32, 33, 65}) {
        const int ldx = k + 3, ldy = out + 2;
        std::vector<float> x(size_t(n) * ldx), w(size_t(out) * k), bias(out), y(size_t(n) * ldy, 7.f);
        for (auto& v : x) v = u(rng);
        for (auto& v : w) v = u(rng);
        for (auto& v : bias) v = u(rng);
        const bool with_bias = (n + k + out) % 2 == 0;
        LayerInfo info;
        GemmArgs a{&info, x.data(), n, k, ldx, w.data(), k, with_bias ? bias.data() : nullptr, y.data(), out, ldy};
        const bool prepacked = (n + out) % 3 != 0;
        if (prepacked) gemm_prepacked(a, pack_depth_blocks(w.data(), out, k, k));
        else gemm_default(a);
        for (int r = 0; r < n; ++r) {
          for (int o = 0; o < out; ++o) {
            double ref = with_bias ? bias[o] : 0.0, mag = with_bias ? std::abs(bias[o]) : 0.0;
            for (int j = 0; j < k; ++j) {
              ref += double(x[size_t(r) * ldx + j]) * w[size_t(o) * k + j];
              mag += std::abs(double(x[size_t(r) * ldx + j]) * w[size_t(o) * k + j]);
            }
            // Each output is summed in chains of at most 128 FMAs (error <= 128 eps mag),
            // then the bias and ceil(k/128) partial sums are added (+ (k/128 + 1) eps mag).
            const double bound = (128 + std::ceil(k / 128.0) + 2) * kEps * mag + 1e-30;
            REQUIRE(std::abs(double(y[size_t(r) * ldy + o]) - ref) <= bound);
          }
          for (int o = out; o < ldy; ++o) REQUIRE(y[size_t(r) * ldy + o] == 7.f);  // padding untouched
        }
      }
}

TEST_CASE("depthwise conv matches a double reference", "[ocr][kernels]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  struct Case { int H, W, C, kh, kw, sh, sw, ph, pw; };
  for (const Case& c : {Case{5, 9, 16, 3, 3, 1, 1, 1, 1}, Case{6, 13, 17, 5, 5, 1, 1, 2, 2},
                        Case{7, 11, 33, 5, 5, 2, 1, 2, 2}, Case{4, 4, 1, 3, 3, 2, 2, 1, 1},
                        Case{1, 1, 48, 3, 3, 1, 1, 1, 1}, Case{3, 31, 240, 3, 3, 2, 1, 1, 1}}) {
    const int Ho = (c.H + 2 * c.ph - c.kh) / c.sh + 1, Wo = (c.W + 2 * c.pw - c.kw) / c.sw + 1;
    std::vector<float> x(size_t(c.H) * c.W * c.C), wt(size_t(c.kh) * c.kw * c.C), b(c.C), y(size_t(Ho) * Wo * c.C);
    for (auto& v : x) v = u(rng);
    for (auto& v : wt) v = u(rng);
    for (auto& v : b) v = u(rng);
    depthwise_conv(x.data(), c.H, c.W, c.C, wt.data(), b.data(), c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, y.data(), Ho, Wo);
    for (int oy = 0; oy < Ho; ++oy)
      for (int ox = 0; ox < Wo; ++ox)
        for (int ch = 0; ch < c.C; ++ch) {
          double ref = b[ch], mag = std::abs(b[ch]);
          for (int ky = 0; ky < c.kh; ++ky)
            for (int kx = 0; kx < c.kw; ++kx) {
              const int iy = oy * c.sh - c.ph + ky, ix = ox * c.sw - c.pw + kx;
              if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
              const double t = double(x[(size_t(iy) * c.W + ix) * c.C + ch]) * wt[size_t(ky * c.kw + kx) * c.C + ch];
              ref += t;
              mag += std::abs(t);
            }
          // One chain of at most kh*kw FMAs after the bias: error <= (kh*kw + 1) eps mag.
          REQUIRE(std::abs(double(y[(size_t(oy) * Wo + ox) * c.C + ch]) - ref) <= (c.kh * c.kw + 1) * kEps * mag + 1e-30);
        }
  }
}

TEST_CASE("softmax rows and layer norm", "[ocr][kernels]") {
  std::vector<float> x = {1.f, 2.f, 3.f, -1e30f, 0.f, 0.f, 0.f, 0.f};
  softmax_rows(x.data(), 2, 4, nullptr);
  const double z = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  CHECK(x[0] == Approx(std::exp(-2.0) / z).epsilon(1e-5));
  CHECK(x[2] == Approx(1.0 / z).epsilon(1e-5));
  CHECK(x[3] == 0.f);
  CHECK(x[4] == Approx(0.25).epsilon(1e-6));
  std::vector<float> v = {1.f, 2.f, 3.f, 4.f}, g = {1.f, 1.f, 2.f, 1.f}, be = {0.f, 0.f, 0.f, 1.f}, out(4), scratch;
  layer_norm(v.data(), 1, 4, g.data(), be.data(), 1e-5f, out.data(), nullptr, scratch);
  const double sd = std::sqrt(1.25 + 1e-5);
  CHECK(out[0] == Approx(-1.5 / sd).epsilon(1e-5));
  CHECK(out[2] == Approx(2 * 0.5 / sd).epsilon(1e-5));
  CHECK(out[3] == Approx(1.5 / sd + 1).epsilon(1e-5));
}
