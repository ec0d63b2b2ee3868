// etk:isa-variants etk:threads
// Tests of etk/core/gemm_f32.hpp: every dispatch path against the double-accumulating
// reference (etk/core/reference/gemm_f32.hpp) over awkward shapes (M = 1, sizes around
// every tile height and the 32-column panel, depths around the depth block), row strides
// wider than the rows, both output modes and both ways of passing B; the FMA paths (AVX2,
// AVX-512) against each other bit for bit; the column maxima the kernels fold in (dense
// attention's); thread-count invariance; bad input.
//
// Tolerance, derived: a fast path sums K products in fp32 in one chain, so |c - exact| <=
// gamma_{K+1} * sum_t |a_it b_tj| (gamma_n = n u / (1 - n u), u = 2^-24; the +1 covers the
// portable path rounding each product separately, and the initial C term when
// accumulating); the reference rounds the exact double sum once (<= u * the same sum,
// double's own error being ~2^-29 of that). Bound: (gamma_{K+1} + u) * magnitude.
#include <catch2/catch.hpp>
#include <etk/core/gemm_f32.hpp>
#include <etk/core/reference/gemm_f32.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "support/paths.hpp"

namespace {

struct Strided {
  std::ptrdiff_t rows, cols, ld;
  std::vector<float> data;
  Strided(std::ptrdiff_t r, std::ptrdiff_t c, std::ptrdiff_t pad, std::mt19937& gen, float lo = -1.0f, float hi = 1.0f)
      : rows(r), cols(c), ld(c + pad), data(static_cast<std::size_t>(r * (c + pad)), 7.0f) {
    std::uniform_real_distribution<float> u(lo, hi);
    for (std::ptrdiff_t i = 0; i < r; ++i)
      for (std::ptrdiff_t j = 0; j < c; ++j) data[static_cast<std::size_t>(i * ld + j)] = u(gen);
  }
  etk::ConstMatrixView<float> cview() const { return etk::matrix_view(static_cast<const float*>(data.data()), rows, cols, ld); }
  etk::MatrixView<float> view() { return etk::matrix_view(data.data(), rows, cols, ld); }
};

double bound(std::ptrdiff_t k, double magnitude) {
  const double u = std::ldexp(1.0, -24), n = double(k + 1);
  return (n * u / (1.0 - n * u) + u) * magnitude;
}

// c (fast) against the reference of a·b (+ c0 when accumulating), element by element.
void check_close(const Strided& a, const Strided& b, const Strided& c0, const Strided& c, bool acc) {
  etk::RowMatrixXf ref(a.rows, b.cols);
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> mag(a.rows, b.cols);
  for (std::ptrdiff_t i = 0; i < a.rows; ++i)
    for (std::ptrdiff_t j = 0; j < b.cols; ++j) ref(i, j) = c0.data[static_cast<std::size_t>(i * c0.ld + j)];
  auto rv = etk::matrix_view(ref.data(), a.rows, b.cols, b.cols);
  auto mv = etk::matrix_view(mag.data(), a.rows, b.cols, b.cols);
  etk::reference::gemm_f32(a.cview(), b.cview(), rv, acc, &mv);
  int bad = 0;
  for (std::ptrdiff_t i = 0; i < a.rows; ++i)
    for (std::ptrdiff_t j = 0; j < b.cols; ++j) {
      const double err = std::fabs(double(c.data[static_cast<std::size_t>(i * c.ld + j)]) - double(ref(i, j)));
      if (!(err <= bound(a.cols, mag(i, j))) && bad++ < 5)
        FAIL_CHECK("M " << a.rows << " K " << a.cols << " N " << b.cols << " at (" << i << ", " << j << "): err " << err
                        << " > bound " << bound(a.cols, mag(i, j)));
    }
  CHECK(bad == 0);
  // The padding between rows of c is never written.
  for (std::ptrdiff_t i = 0; i < c.rows; ++i)
    for (std::ptrdiff_t j = c.cols; j < c.ld; ++j) REQUIRE(c.data[static_cast<std::size_t>(i * c.ld + j)] == 7.0f);
}

}  // namespace

TEST_CASE("gemm_f32 matches the reference on every path, shape, stride and output mode") {
  std::mt19937 gen(17);
  const std::vector<std::ptrdiff_t> ms = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25, 47, 48, 49, 97};
  const std::vector<std::ptrdiff_t> ks = {1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 257, 513, 700};
  const std::vector<std::ptrdiff_t> ns = {1, 3, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 200};
  paths::for_each([&](etk::Isa) {
    for (int trial = 0; trial < 60; ++trial) {
      const std::ptrdiff_t m = ms[gen() % ms.size()], k = ks[gen() % ks.size()], n = ns[gen() % ns.size()];
      const std::ptrdiff_t pad = trial % 3 == 0 ? 0 : 1 + std::ptrdiff_t(gen() % 9);
      const bool acc = trial % 4 == 1;
      Strided a(m, k, pad, gen), b(k, n, pad, gen), c0(m, n, pad, gen), c = c0;
      INFO("trial " << trial << " M " << m << " K " << k << " N " << n << " pad " << pad << " acc " << acc);
      const auto mode = acc ? etk::GemmOutput::accumulate : etk::GemmOutput::overwrite;
      etk::gemm_f32(a.cview(), b.cview(), c.view(), {}, mode);
      check_close(a, b, c0, c, acc);
      // Packed once, from [K, N] and from the transposed [N, K]: the same bits.
      Strided bt(n, k, 0, gen);
      for (std::ptrdiff_t t = 0; t < k; ++t)
        for (std::ptrdiff_t j = 0; j < n; ++j) bt.data[static_cast<std::size_t>(j * k + t)] = b.data[static_cast<std::size_t>(t * b.ld + j)];
      for (const etk::PackedWeightsF32& w : {etk::PackedWeightsF32::from_kn(b.cview()), etk::PackedWeightsF32(bt.cview())}) {
        Strided c2 = c0;
        etk::gemm_f32(a.cview(), w, c2.view(), {}, mode);
        REQUIRE(std::memcmp(c.data.data(), c2.data.data(), c.data.size() * sizeof(float)) == 0);
      }
    }
  });
}

TEST_CASE("gemm_f32: the FMA paths compute the same bits, in one process") {
  // AVX2 and AVX-512 run the same FMA chain per element (only the tiling differs), so
  // their outputs are identical. Only meaningful in the dispatch build.
  if (!etk::dispatched()) return;
  std::mt19937 gen(5);
  Strided a(61, 333, 3, gen), b(333, 101, 0, gen);
  const etk::PackedWeightsF32 w = etk::PackedWeightsF32::from_kn(b.cview());
  std::vector<std::vector<float>> outs;
  for (etk::Isa isa : {etk::Isa::avx2, etk::Isa::avx512, etk::Isa::avx512vnni}) {
    if (!etk::isa_supported(isa)) {
      std::printf("SKIPPED path %s: this CPU runs paths up to %s\n", etk::isa_name(isa), etk::isa_name(etk::best_isa()));
      continue;
    }
    const paths::Pin pin(isa);
    Strided c(61, 101, 0, gen);
    etk::gemm_f32(a.cview(), w, c.view());
    outs.push_back(c.data);
    INFO("path " << etk::isa_name(isa));
    REQUIRE(outs.back() == outs.front());
  }
}

TEST_CASE("gemm_f32: the depth block comes from L1d and never changes a result") {
  using etk::detail::gemm_f32::depth_block_for;
  CHECK(depth_block_for(32 * 1024) == 256);
  CHECK(depth_block_for(48 * 1024) == 384);
  CHECK(depth_block_for(4 * 1024) == 64);
  CHECK(depth_block_for(1024 * 1024) == 512);
  CHECK(etk::detail::gemm_f32::depth_block() >= 64);
  CHECK(etk::detail::gemm_f32::depth_block() <= 512);
  // One FMA chain per element, continued across depth blocks: the same bits for any kc,
  // including blocks that do not divide K and one depth at a time.
  std::mt19937 gen(13);
  Strided a(29, 301, 2, gen), b(301, 45, 0, gen);
  const etk::PackedWeightsF32 w = etk::PackedWeightsF32::from_kn(b.cview());
  std::vector<float> first;
  for (std::ptrdiff_t kc : {std::ptrdiff_t(1), std::ptrdiff_t(7), std::ptrdiff_t(64), std::ptrdiff_t(256),
                            std::ptrdiff_t(301), std::ptrdiff_t(4096)}) {
    std::vector<float> c(static_cast<std::size_t>(29 * 45));
    etk::detail::gemm_f32::gemm_block(a.data.data(), a.ld, 1, 301, w.data(), 32, 32 * 301, 45, c.data(), 45, false,
                                      0, 29, 0, etk::gemm_f32_layout::panels(45), kc);
    INFO("kc " << kc);
    if (first.empty()) first = c;
    CHECK(c == first);
  }
}

TEST_CASE("gemm_f32: the column maxima folded in by the kernels are those of C, on every path") {
  // gemm_block with col_max: C bit for bit as without it; col_max[j] = max(its value
  // before, max_i C[i][j]) for j < n, from the last depth block only (kc below, at and
  // above K), for tiles of every height and partial panels; the floats past n untouched.
  std::mt19937 gen(31);
  const std::vector<std::ptrdiff_t> ms = {1, 2, 5, 11, 12, 13, 25, 97};
  const std::vector<std::ptrdiff_t> ks = {1, 3, 17, 64, 65, 300};
  const std::vector<std::ptrdiff_t> ns = {1, 7, 16, 17, 32, 33, 70, 192};
  paths::for_each([&](etk::Isa) {
    for (int trial = 0; trial < 40; ++trial) {
      const std::ptrdiff_t m = ms[gen() % ms.size()], k = ks[gen() % ks.size()], n = ns[gen() % ns.size()];
      const std::ptrdiff_t kc = trial % 3 == 0 ? 7 : trial % 3 == 1 ? k : 4096;
      Strided a(m, k, std::ptrdiff_t(gen() % 3), gen), b(k, n, 0, gen);
      const etk::PackedWeightsF32 w = etk::PackedWeightsF32::from_kn(b.cview());
      const std::ptrdiff_t panels = etk::gemm_f32_layout::panels(n);
      std::vector<float> want(static_cast<std::size_t>(m * n)), got(want.size());
      etk::detail::gemm_f32::gemm_block(a.data.data(), a.ld, 1, k, w.data(), 32, 32 * k, n, want.data(), n, false, 0,
                                        m, 0, panels, kc);
      // Start values: -inf, a value above every |C| (kept), and values inside C's range.
      std::vector<float> mx(static_cast<std::size_t>(panels * 32 + 8), 11.0f), before(mx.size());
      for (std::ptrdiff_t j = 0; j < n; ++j)
        mx[std::size_t(j)] = j % 3 == 0 ? -std::numeric_limits<float>::infinity() : j % 3 == 1 ? 1e30f : -0.5f;
      before = mx;
      etk::detail::gemm_f32::gemm_block(a.data.data(), a.ld, 1, k, w.data(), 32, 32 * k, n, got.data(), n, false, 0,
                                        m, 0, panels, kc, mx.data());
      INFO("M " << m << " K " << k << " N " << n << " kc " << kc);
      REQUIRE(got == want);
      for (std::ptrdiff_t j = 0; j < std::ptrdiff_t(mx.size()); ++j) {
        float e = before[std::size_t(j)];
        if (j < n)
          for (std::ptrdiff_t i = 0; i < m; ++i) e = std::max(e, want[std::size_t(i * n + j)]);
        INFO("column " << j);
        REQUIRE(mx[std::size_t(j)] == e);
      }
    }
  });
}

TEST_CASE("gemm_f32: bit-identical for any pool, with or without an arena", "[threads]") {
  std::mt19937 gen(9);
  Strided a(203, 300, 1, gen), b(300, 333, 2, gen);
  const etk::PackedWeightsF32 w = etk::PackedWeightsF32::from_kn(b.cview());
  Strided one(203, 333, 0, gen);
  etk::gemm_f32(a.cview(), w, one.view());
  for (int threads : {1, 2, 3, 8}) {
    etk::SimpleThreadPool pool(threads);
    etk::ScratchArena arena;
    arena.reserve(etk::gemm_f32_scratch_bytes(300, 333));
    const void* reserved = arena.data();
    etk::Context ctx{&pool, &arena};
    Strided many(203, 333, 0, gen), unpacked(203, 333, 0, gen);
    etk::gemm_f32(a.cview(), w, many.view(), ctx);
    etk::gemm_f32(a.cview(), b.cview(), unpacked.view(), ctx);
    CHECK(many.data == one.data);
    CHECK(unpacked.data == one.data);
    CHECK(arena.data() == reserved);  // planned scratch: no reallocation
  }
}

TEST_CASE("gemm_f32: bad input is rejected") {
  std::mt19937 gen(1);
  Strided a(4, 5, 0, gen), b(5, 6, 0, gen), c(4, 6, 0, gen);
  const etk::PackedWeightsF32 w = etk::PackedWeightsF32::from_kn(b.cview());
  Strided a_bad(4, 4, 0, gen), c_bad(4, 7, 0, gen), c_rows(3, 6, 0, gen);
  CHECK_THROWS_WITH(etk::gemm_f32(a_bad.cview(), w, c.view()), Catch::Contains("'a'") && Catch::Contains("depth"));
  CHECK_THROWS_WITH(etk::gemm_f32(a.cview(), w, c_bad.view()), Catch::Contains("'c'"));
  CHECK_THROWS_WITH(etk::gemm_f32(a.cview(), w, c_rows.view()), Catch::Contains("'c'"));
  CHECK_THROWS_WITH(etk::gemm_f32(a.cview(), etk::PackedWeightsF32(), c.view()), Catch::Contains("'b'"));
  CHECK_THROWS_AS(etk::PackedWeightsF32::from_kn(etk::matrix_view(static_cast<const float*>(b.data.data()), 0, 6, 6)),
                  etk::invalid_argument);
  // Rows that overlap, and an output aliasing an input.
  CHECK_THROWS_WITH(etk::gemm_f32(a.cview(), w, etk::matrix_view(c.data.data(), 4, 6, 5)), Catch::Contains("overlap"));
  std::vector<float> shared(64, 0.0f);
  auto sa = etk::matrix_view(static_cast<const float*>(shared.data()), 4, 5, 5);
  auto sc = etk::matrix_view(shared.data() + 10, 4, 6, 6);
  CHECK_THROWS_WITH(etk::gemm_f32(sa, w, sc), Catch::Contains("'a'"));
  auto sb = etk::matrix_view(static_cast<const float*>(shared.data()), 5, 6, 6);
  CHECK_THROWS_WITH(etk::gemm_f32(a.cview(), sb, etk::matrix_view(shared.data() + 20, 4, 6, 6)),
                    Catch::Contains("'b'"));
}

TEST_CASE("gemm_f32: IEEE specials propagate (no finiteness check)") {
  std::mt19937 gen(2);
  Strided a(3, 40, 0, gen), b(40, 20, 0, gen), c(3, 20, 0, gen);
  a.data[5] = std::numeric_limits<float>::infinity();  // row 0, depth 5
  b.data[5 * 20 + 3] = 0.0f;                           // inf * 0 = NaN in column 3
  etk::gemm_f32(a.cview(), b.cview(), c.view());
  CHECK(std::isnan(c.data[3]));
  CHECK(std::isinf(c.data[4]));
  CHECK(std::isfinite(c.data[20 + 4]));  // other rows untouched by the special
}

TEST_CASE("gemm_f32: the transposing pack gives pack_panels' bits on every path") {
  // Rows of src become B's columns; the 8x8 register transpose of the AVX2 and wider paths
  // and their element-by-element tails (depths and rows not multiples of 8, a partial
  // panel) against the portable packer, byte for byte, padding included.
  std::mt19937 gen(23);
  const std::vector<std::ptrdiff_t> ks = {1, 7, 8, 9, 16, 63, 64, 65, 120};
  const std::vector<std::ptrdiff_t> ns = {1, 5, 8, 9, 15, 31, 32, 33, 70, 128};
  paths::for_each([&](etk::Isa) {
    for (int trial = 0; trial < 30; ++trial) {
      const std::ptrdiff_t k = ks[gen() % ks.size()], n = ns[gen() % ns.size()];
      Strided src(n, k, std::ptrdiff_t(gen() % 5), gen);
      const float scale = trial % 2 ? 1.0f : 0.18033688f;
      const std::size_t size = static_cast<std::size_t>(etk::gemm_f32_layout::packed_floats(k, n));
      std::vector<float> want(size, 3.0f), got(size, 5.0f);
      etk::gemm_f32_layout::pack_panels(src.data.data(), 1, src.ld, k, n, scale, want.data());
      etk::detail::gemm_f32::pack_transposed(src.data.data(), src.ld, k, n, scale, got.data());
      INFO("k " << k << " n " << n << " ld " << src.ld);
      REQUIRE(std::memcmp(want.data(), got.data(), size * sizeof(float)) == 0);
    }
  });
}
