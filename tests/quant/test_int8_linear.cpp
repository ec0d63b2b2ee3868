// Tests of etk/quant/int8_linear.hpp: weights from float (per tensor and per channel),
// per-row dynamic activation quantization, the one-call int8 linear against the float
// layer and against the exact integer product, the bias quantization's overflow bound.
#include <catch2/catch.hpp>
#include <etk/quant/int8_linear.hpp>

#include <cmath>
#include <limits>
#include <random>

namespace {

etk::RowMatrixXf random_matrix(std::ptrdiff_t rows, std::ptrdiff_t cols, std::mt19937& gen, float sigma = 1.0f) {
  std::normal_distribution<float> d(0.0f, sigma);
  etk::RowMatrixXf m(rows, cols);
  for (std::ptrdiff_t i = 0; i < m.size(); ++i) m.data()[i] = d(gen);
  return m;
}

etk::ConstMatrixView<float> cv(const etk::RowMatrixXf& m) {
  return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols());
}

const double kEps = std::numeric_limits<float>::epsilon();

}  // namespace

TEST_CASE("weights from float: symmetric s8 codes, per tensor or per output channel") {
  std::mt19937 gen(1);
  const etk::RowMatrixXf w = random_matrix(9, 37, gen);
  for (auto g : {etk::WeightGranularity::per_tensor, etk::WeightGranularity::per_channel}) {
    const auto q = etk::Int8LinearWeights::from_float(cv(w), {}, g);
    REQUIRE(q.scale.size() == (g == etk::WeightGranularity::per_tensor ? 1u : 9u));
    for (std::ptrdiff_t j = 0; j < 9; ++j) {
      const double max_abs = g == etk::WeightGranularity::per_tensor ? w.cwiseAbs().maxCoeff()
                                                                      : w.row(j).cwiseAbs().maxCoeff();
      CHECK(q.scale_at(j) == static_cast<float>(max_abs) / 127.0f);
    }
  }
  const std::vector<float> b(8, 1.0f);
  CHECK_THROWS_WITH(etk::Int8LinearWeights::from_float(cv(w), b, etk::WeightGranularity::per_tensor),
                    Catch::Contains("bias"));
  etk::RowMatrixXf bad = w;
  bad(2, 3) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(etk::Int8LinearWeights::from_float(cv(bad), {}, etk::WeightGranularity::per_channel),
                  etk::invalid_argument);
}

TEST_CASE("int8_linear: the exact integer product, scaled per row and per channel") {
  std::mt19937 gen(2);
  for (std::ptrdiff_t m : {1, 3, 7, 20})
    for (std::ptrdiff_t k : {1, 5, 64, 129})
      for (std::ptrdiff_t n : {1, 17, 65}) {
        const etk::RowMatrixXf x = random_matrix(m, k, gen, 2.0f), w = random_matrix(n, k, gen, 0.1f);
        etk::RowMatrixXf xs = x;
        xs.row(0) *= 100.0f;  // rows of very different ranges: per-row scales matter
        if (m > 2) xs.row(2).setZero();
        std::vector<float> bias(static_cast<std::size_t>(n));
        for (auto& v : bias) v = std::normal_distribution<float>(0.0f, 1.0f)(gen);
        const auto q = etk::Int8LinearWeights::from_float(cv(w), bias, etk::WeightGranularity::per_channel);
        etk::RowMatrixXf y(m, n);
        etk::int8_linear(cv(xs), q, etk::matrix_view(y.data(), m, n, n));
        // The same codes, independently: per-row and per-channel grids, int64 dot products.
        etk::RowMatrix<std::int8_t> qx(m, k);
        std::vector<float> sx(static_cast<std::size_t>(m));
        etk::quantize_rows_s8(cv(xs), etk::matrix_view(qx.data(), m, k, k), sx.data());
        for (std::ptrdiff_t i = 0; i < m; ++i) {
          const float mx = xs.row(i).cwiseAbs().maxCoeff();
          CHECK(sx[std::size_t(i)] == (mx > 0 ? mx / 127.0f : 1.0f));
        }
        for (std::ptrdiff_t i = 0; i < m; ++i)
          for (std::ptrdiff_t j = 0; j < n; ++j) {
            const float sw = q.scale_at(j);
            std::int64_t acc = 0;
            for (std::ptrdiff_t t = 0; t < k; ++t) {
              const auto cw = static_cast<std::int64_t>(std::nearbyint(w(j, t) / sw));
              acc += std::int64_t(qx(i, t)) * std::max<std::int64_t>(-127, std::min<std::int64_t>(127, cw));
            }
            // float(acc) (exact below 2^24, else 0.5 ulp), times the float product of the two
            // scales (2 roundings), plus the bias (1 rounding): <= 4 eps of the magnitudes.
            const double exact = double(acc) * double(sx[std::size_t(i)]) * double(sw) + double(bias[std::size_t(j)]);
            const double mag = std::fabs(double(acc) * double(sx[std::size_t(i)]) * double(sw)) + std::fabs(bias[std::size_t(j)]);
            REQUIRE(std::fabs(double(y(i, j)) - exact) <= 4.0 * kEps * mag);
            // Against the float layer: each product's code error is <= half a step on each side.
            double ref = bias[std::size_t(j)], bound = 0;
            for (std::ptrdiff_t t = 0; t < k; ++t) {
              ref += double(xs(i, t)) * double(w(j, t));
              bound += std::fabs(xs(i, t)) * sw / 2 + sx[std::size_t(i)] / 2 * std::fabs(w(j, t)) +
                       sx[std::size_t(i)] * sw / 4;
            }
            REQUIRE(std::fabs(double(y(i, j)) - ref) <= bound + 4.0 * kEps * mag);
          }
      }
}

TEST_CASE("int8_linear takes its scratch from the context's arena") {
  std::mt19937 gen(3);
  const etk::RowMatrixXf x = random_matrix(6, 40, gen), w = random_matrix(10, 40, gen);
  const auto q = etk::Int8LinearWeights::from_float(cv(w), {}, etk::WeightGranularity::per_tensor);
  etk::ScratchArena arena(etk::int8_linear_scratch_bytes(6, q));
  const void* reserved = arena.data();
  etk::RowMatrixXf y1(6, 10), y2(6, 10);
  etk::int8_linear(cv(x), q, etk::matrix_view(y1.data(), 6, 10, 10));
  etk::int8_linear(cv(x), q, etk::matrix_view(y2.data(), 6, 10, 10), etk::Context{nullptr, &arena});
  CHECK(arena.data() == reserved);
  CHECK((y1.array() == y2.array()).all());
  etk::RowMatrixXf bad(6, 9);
  CHECK_THROWS_WITH(etk::int8_linear(cv(x), q, etk::matrix_view(bad.data(), 6, 9, 9)), Catch::Contains("'y'"));
  const etk::RowMatrixXf x39 = random_matrix(6, 39, gen);
  CHECK_THROWS_WITH(etk::int8_linear(cv(x39), q, etk::matrix_view(y1.data(), 6, 10, 10)), Catch::Contains("'x'"));
}

TEST_CASE("static bias quantization: round(b / (S_a S_w)), rejected past the accumulator bound") {
  std::mt19937 gen(4);
  const std::ptrdiff_t k = 1000, n = 4;
  const etk::RowMatrixXf w = random_matrix(n, k, gen);
  const auto q = etk::Int8LinearWeights::from_float(cv(w), {}, etk::WeightGranularity::per_channel);
  const double a_scale = 0.01;
  std::vector<float> b{0.5f, -0.25f, 3.0f, 0.0f};
  const auto bq = etk::quantize_bias_s32(b, a_scale, q);
  for (std::ptrdiff_t j = 0; j < n; ++j)
    CHECK(bq[std::size_t(j)] == std::nearbyint(double(b[std::size_t(j)]) / (a_scale * q.scale_at(j))));
  // The bound: k * 128 * 128 + |bias| <= 2^31 - 1; one unit more is rejected.
  const double room = double(std::numeric_limits<std::int32_t>::max()) - double(k) * 128 * 128;
  std::vector<float> edge(n, 0.0f);
  const double unit = a_scale * q.scale_at(0);
  edge[0] = static_cast<float>(room * unit);
  const auto at = std::nearbyint(double(edge[0]) / unit);
  if (at <= room)
    CHECK_NOTHROW(etk::quantize_bias_s32(edge, a_scale, q));
  else
    CHECK_THROWS_WITH(etk::quantize_bias_s32(edge, a_scale, q), Catch::Contains("bias"));
  edge[0] = static_cast<float>(2.0 * room * unit);
  CHECK_THROWS_WITH(etk::quantize_bias_s32(edge, a_scale, q), Catch::Contains("bias"));
  CHECK_THROWS_WITH(etk::quantize_bias_s32(b, 0.0, q), Catch::Contains("a_scale"));
}

TEST_CASE("int8_linear_static: codes on the calibrated grid, int32 bias where it fits, float bias where not") {
  std::mt19937 gen(4);
  for (std::ptrdiff_t m : {1, 4, 19})
    for (std::ptrdiff_t k : {1, 33, 300})
      for (std::ptrdiff_t n : {1, 16, 37}) {
        const etk::RowMatrixXf x = random_matrix(m, k, gen, 1.5f);
        etk::RowMatrixXf w = random_matrix(n, k, gen, 0.2f);
        std::vector<float> bias(static_cast<std::size_t>(n));
        for (auto& v : bias) v = std::normal_distribution<float>(0.0f, 1.0f)(gen);
        // Channel 0 nearly dead: its bias in accumulator units is far beyond int32, so it
        // must be added in float.
        w.row(0).setConstant(1e-30f);
        bias[0] = 3.0f;
        const auto q = etk::Int8LinearWeights::from_float(cv(w), bias, etk::WeightGranularity::per_channel);
        // A calibrated grid narrower than x, so codes clamp at both ends.
        const etk::QuantParams act = etk::QuantParams::from_range(-2.0f, 2.5f, 8, false);
        etk::RowMatrixXf y(m, n);
        etk::int8_linear_static(cv(x), act, q, etk::matrix_view(y.data(), m, n, n));
        const double sa = act.scale[0];
        const std::int32_t zp = act.zero_point[0];
        const etk::RowMatrix<std::uint8_t> qx = etk::quantize<std::uint8_t>(cv(x), act);  // tested in test_uniform
        const double budget = 2147483647.0 - double(k) * std::max(zp, 255 - zp) * 128.0;
        for (std::ptrdiff_t i = 0; i < m; ++i)
          for (std::ptrdiff_t j = 0; j < n; ++j) {
            const float sw = q.scale_at(j);
            std::int64_t acc = 0;
            for (std::ptrdiff_t t = 0; t < k; ++t) {
              const auto qa = static_cast<std::int64_t>(qx(i, t));
              const auto cw = static_cast<std::int64_t>(std::nearbyint(w(j, t) / sw));
              acc += (qa - zp) * std::max<std::int64_t>(-127, std::min<std::int64_t>(127, cw));
            }
            const float out_scale = static_cast<float>(sa * double(sw));
            const double code_b = std::nearbyint(double(bias[std::size_t(j)]) / (sa * double(sw)));
            const bool in_int = std::fabs(code_b) <= budget;
            INFO("m " << m << " k " << k << " n " << n << " i " << i << " j " << j);
            CHECK(in_int == (j != 0));
            // The GEMM's float output is float(acc + code) * out_scale (one product of floats);
            // the float-bias channel adds its bias afterwards in float.
            const float expect = in_int ? static_cast<float>(acc + std::int64_t(code_b)) * out_scale
                                        : static_cast<float>(acc) * out_scale + bias[std::size_t(j)];
            REQUIRE(y(i, j) == expect);
          }
      }
  const etk::RowMatrixXf x = random_matrix(3, 8, gen), w = random_matrix(4, 8, gen);
  const auto q = etk::Int8LinearWeights::from_float(cv(w), {}, etk::WeightGranularity::per_tensor);
  etk::RowMatrixXf y(3, 4);
  CHECK_THROWS_WITH(etk::int8_linear_static(cv(x), etk::QuantParams::symmetric(1.0f, 8), q,
                                            etk::matrix_view(y.data(), 3, 4, 4)),
                    Catch::Contains("'act'"));
  CHECK_THROWS_WITH(etk::int8_linear_static(cv(x), etk::QuantParams::from_range(-1.0f, 1.0f, 4, false), q,
                                            etk::matrix_view(y.data(), 3, 4, 4)),
                    Catch::Contains("'act'"));
}

TEST_CASE("prepared static layer: the epilogue computed once gives the per-call layer's output bit for bit") {
  std::mt19937 gen(11);
  for (std::ptrdiff_t m : {1, 7, 40})
    for (std::ptrdiff_t k : {1, 17, 129})
      for (std::ptrdiff_t n : {1, 15, 64}) {
        const etk::RowMatrixXf x = random_matrix(m, k, gen, 2.0f);
        etk::RowMatrixXf w = random_matrix(n, k, gen, 0.3f);
        std::vector<float> bias(static_cast<std::size_t>(n));
        for (auto& v : bias) v = std::normal_distribution<float>(0.0f, 1.0f)(gen);
        w.row(n - 1).setConstant(1e-30f);  // a float-bias channel
        bias[std::size_t(n - 1)] = -2.0f;
        const auto q = etk::Int8LinearWeights::from_float(cv(w), bias, etk::WeightGranularity::per_channel);
        const etk::QuantParams act = etk::QuantParams::from_range(-3.0f, 1.0f, 8, false);
        const etk::Int8StaticLayer layer(q, act);
        // The epilogue: S_a * S_w[j] and round(b_j / (S_a S_w[j])) (0 for the float channel).
        for (std::ptrdiff_t j = 0; j < n; ++j) {
          const double s = double(act.scale[0]) * double(q.scale_at(j));
          CHECK(layer.epilogue.out_scale[std::size_t(j)] == static_cast<float>(s));
          if (j != n - 1) CHECK(layer.epilogue.bias[std::size_t(j)] == std::nearbyint(double(bias[std::size_t(j)]) / s));
        }
        CHECK(layer.epilogue.float_bias == std::vector<std::ptrdiff_t>{n - 1});
        etk::RowMatrixXf a(m, n), b(m, n);
        etk::int8_linear_static(cv(x), act, q, etk::matrix_view(a.data(), m, n, n));
        etk::int8_linear_static(cv(x), layer, etk::matrix_view(b.data(), m, n, n));
        INFO("m " << m << " k " << k << " n " << n);
        REQUIRE((a.array() == b.array()).all());
      }
  // An epilogue prepared for other weights, and a grid that is not per-tensor u8, are rejected.
  const etk::RowMatrixXf x = random_matrix(3, 8, gen), w4 = random_matrix(4, 8, gen), w5 = random_matrix(5, 8, gen);
  const auto q4 = etk::Int8LinearWeights::from_float(cv(w4), {}, etk::WeightGranularity::per_tensor);
  const auto q5 = etk::Int8LinearWeights::from_float(cv(w5), {}, etk::WeightGranularity::per_tensor);
  const auto e5 = etk::Int8StaticEpilogue::prepare(etk::QuantParams::from_range(-1.0f, 1.0f, 8, false), q5);
  etk::RowMatrixXf y(3, 4);
  CHECK_THROWS_WITH(etk::int8_linear_static(cv(x), e5, q4, etk::matrix_view(y.data(), 3, 4, 4)),
                    Catch::Contains("'epilogue'"));
  CHECK_THROWS_WITH(etk::Int8StaticEpilogue::prepare(etk::QuantParams::symmetric(1.0f, 8), q4), Catch::Contains("'act'"));
}

TEST_CASE("quantize_rows_s8: the codes of one symmetric grid per row, non-finite rows rejected") {
  std::mt19937 gen(5);
  for (std::ptrdiff_t m : {1, 2, 9, 33})
    for (std::ptrdiff_t k : {1, 15, 16, 17, 100}) {
      etk::RowMatrixXf x = random_matrix(m, k, gen, 3.0f);
      x(0, 0) = 1e30f;  // extremes: a huge row, a zero row, a denormal-sized row
      if (m > 1) x.row(1).setZero();
      if (m > 2) x.row(2).setConstant(1e-40f);
      etk::RowMatrix<std::int8_t> q(m, k);
      std::vector<float> s(static_cast<std::size_t>(m));
      etk::quantize_rows_s8(cv(x), etk::matrix_view(q.data(), m, k, k), s.data());
      // Reference: a stack of per-row symmetric_s8 grids, quantized by the generic quantizer.
      std::vector<etk::QuantParams> rows;
      for (std::ptrdiff_t i = 0; i < m; ++i) rows.push_back(etk::symmetric_s8(x.row(i).cwiseAbs().maxCoeff()));
      const etk::QuantParams grid = etk::QuantParams::stack(rows, 0);
      const etk::RowMatrix<std::int8_t> ref = etk::quantize<std::int8_t>(cv(x), grid);
      INFO("m " << m << " k " << k);
      REQUIRE((q.array() == ref.array()).all());
      for (std::ptrdiff_t i = 0; i < m; ++i) REQUIRE(s[std::size_t(i)] == grid.scale[std::size_t(i)]);
    }
  etk::RowMatrixXf bad = etk::RowMatrixXf::Ones(3, 4);
  bad(1, 2) = std::numeric_limits<float>::infinity();
  etk::RowMatrix<std::int8_t> q(3, 4);
  float s[3];
  CHECK_THROWS_WITH(etk::quantize_rows_s8(cv(bad), etk::matrix_view(q.data(), 3, 4, 4), s), Catch::Contains("'x'"));
  bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(etk::quantize_rows_s8(cv(bad), etk::matrix_view(q.data(), 3, 4, 4), s), etk::invalid_argument);
}
