// Tests of the decode step over a KVCache (LATTE and dense) against the reference twin.
// etk:isa-variants (built scalar, AVX2 and AVX-512 VNNI; each compared with the reference;
// the dispatch variant also pins every path in one process for the primitive tests)
#include <catch2/catch.hpp>
#include <etk/attention/decode.hpp>
#include <etk/attention/reference/decode.hpp>

#include <cstring>
#include <limits>
#include <random>

#include "support/latte_util.hpp"
#include "support/paths.hpp"

using latte_test::Heads;
using latte_test::random_heads;

namespace {

const float kInf = std::numeric_limits<float>::infinity();
const double kEps = std::numeric_limits<float>::epsilon();

etk::KVCache make_cache(std::ptrdiff_t H, std::ptrdiff_t d, std::ptrdiff_t dv,
                        etk::KVValueType vt, std::ptrdiff_t page, std::ptrdiff_t window = 0) {
  etk::KVCacheConfig c;
  c.kv_heads = H;
  c.dim = d;
  c.value_dim = dv;
  c.values = vt;
  c.page_tokens = page;
  c.window = window;
  return etk::KVCache(c);
}

// Appends tokens [a, b) of K, V (kv heads x seq x dim) in one call.
void append_range(etk::KVCache& c, const Heads& K, const Heads& V, std::ptrdiff_t a,
                  std::ptrdiff_t b) {
  c.append(etk::HeadsView<const float>(K.data.data() + a * K.dim, K.heads, b - a, K.dim, K.dim,
                                       K.seq * K.dim),
           etk::HeadsView<const float>(V.data.data() + a * V.dim, V.heads, b - a, V.dim, V.dim,
                                       V.seq * V.dim));
}

// |O_fast - O_ref| bound; both use the same float logits l (|l| <= lmax_abs) over n keys.
// The fast weights 2^(l*log2e - m*log2e) (one FMA, softmax_kernels.hpp) carry a relative
// error <= 3*lmax_abs*eps from the fused exponent plus <= 8 eps from the polynomial and
// scaling; a page's sum of weights and its P*V sums over <= n terms add <= n eps each
// (relative to z and z*max|v|); the merge over pages scales each partial by
// exp(m_p - M) (<= 2|M| eps + 1 ulp) and sums <= n partials (<= n eps); the final
// division 1 eps; int8 values fold the block scale into the weight (1 eps more). The
// double reference is exact at this scale.
double tolerance(std::ptrdiff_t n, double lmax_abs, double vmax) {
  return (4.0 * double(n) + 20.0 + 5.0 * lmax_abs) * kEps * vmax;
}

double max_logit(const Heads& Q, const Heads& K, float scale) {
  return latte_test::max_row_norm(Q) * latte_test::max_row_norm(K) * scale * 1.05 + 1.0;
}

struct Run {
  std::vector<float> out;
  etk::LatteStats stats;
};

Run run_fast(const etk::KVCache& c, const Heads& Q, const etk::DecodeParams& p, bool latte,
             etk::ThreadPool* pool = nullptr) {
  Run r;
  r.out.assign(std::size_t(Q.heads * Q.seq * c.value_dim()), -7.0f);
  etk::HeadsView<float> O(r.out.data(), Q.heads, Q.seq, c.value_dim());
  etk::Context ctx;
  ctx.pool = pool;
  if (latte)
    etk::latte_decode(c, Q.view(), O, p, ctx, &r.stats);
  else
    etk::dense_decode(c, Q.view(), O, p, ctx);
  return r;
}

Run run_ref(const etk::KVCache& c, const Heads& Q, const etk::DecodeParams& p, bool dense) {
  Run r;
  r.out.assign(std::size_t(Q.heads * Q.seq * c.value_dim()), -7.0f);
  etk::HeadsView<float> O(r.out.data(), Q.heads, Q.seq, c.value_dim());
  etk::reference::decode_attention(c, Q.view(), O, p, dense, &r.stats);
  return r;
}

const etk::KVValueType kTypes[] = {etk::KVValueType::fp32, etk::KVValueType::fp16,
                                   etk::KVValueType::bf16, etk::KVValueType::int8};

}  // namespace

TEST_CASE("cache codes and scales are per-block max-abs quantization, one by one == at once") {
  std::mt19937 rng(3);
  for (std::ptrdiff_t d : {1, 7, 8, 9, 33, 64, 130}) {
    for (auto vt : kTypes) {
      const std::ptrdiff_t H = 2, n = 77, dv = d % 5 + 3;
      Heads K = random_heads(H, n, d, rng), V = random_heads(H, n, dv, rng);
      for (std::ptrdiff_t t = 0; t < d; ++t) K.row(1, 40)[t] = 0.0f;  // an all-zero key
      K.row(0, 21)[d - 1] = 9.0f;  // raises its block's max-abs mid-block
      etk::KVCache one = make_cache(H, d, dv, vt, 32), all = make_cache(H, d, dv, vt, 32);
      for (std::ptrdiff_t i = 0; i < n; ++i) append_range(one, K, V, i, i + 1);
      append_range(all, K, V, 0, n);
      REQUIRE(one.length() == n);
      for (std::ptrdiff_t h = 0; h < H; ++h)
        for (std::ptrdiff_t j = 0; j < n; ++j) {
          const std::ptrdiff_t b0 = j / 16 * 16, rows = std::min<std::ptrdiff_t>(16, n - b0);
          const float ks = etk::detail::latte::maxabs_scale(K.row(h, b0), rows, d, d);
          REQUIRE(one.key_scale(h, j) == ks);
          REQUIRE(all.key_scale(h, j) == ks);
          for (std::ptrdiff_t t = 0; t < d; ++t) {
            REQUIRE(one.key_code(h, j, t) == etk::detail::latte::quantize(K.row(h, j)[t], 1.0f / ks));
            REQUIRE(all.key_code(h, j, t) == one.key_code(h, j, t));
          }
          const float vs = etk::detail::latte::maxabs_scale(V.row(h, b0), rows, dv, dv);
          for (std::ptrdiff_t c = 0; c < dv; ++c) {
            const float x = V.row(h, j)[c];
            float expect = x;
            if (vt == etk::KVValueType::fp16) expect = float(Eigen::half(x));
            if (vt == etk::KVValueType::bf16) expect = float(Eigen::bfloat16(x));
            if (vt == etk::KVValueType::int8) expect = float(etk::detail::latte::quantize(x, 1.0f / vs)) * vs;
            REQUIRE(one.value(h, j, c) == expect);
            REQUIRE(all.value(h, j, c) == expect);
          }
        }
    }
  }
}

TEST_CASE("fast decode equals the reference: kept counts per head, outputs within rounding") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  const std::ptrdiff_t dims[] = {1, 5, 8, 16, 17, 64, 72, 128};
  const float thetas[] = {0.0f, 0.5f, 2.0f, 6.0f, kInf};
  for (int trial = 0; trial < 60; ++trial) {
    const std::ptrdiff_t d = dims[pick(rng) % 8], dv = 1 + pick(rng) % 40;
    const std::ptrdiff_t kvh = 1 + pick(rng) % 3, group = 1 + pick(rng) % 4;
    const std::ptrdiff_t n = 1 + pick(rng) % 300, nq = 1 + pick(rng) % std::min<std::ptrdiff_t>(n, 9);
    const std::ptrdiff_t page = 16 * (1 + pick(rng) % 4);
    const std::ptrdiff_t window = trial % 4 == 3 ? 1 + pick(rng) % 100 : 0;
    const auto vt = kTypes[trial % 4];
    const float sigma = trial % 3 == 0 ? 3.0f : 1.0f;
    Heads K = random_heads(kvh, n, d, rng, sigma), V = random_heads(kvh, n, dv, rng);
    Heads Q = random_heads(kvh * group, nq, d, rng, sigma);
    etk::KVCache c = make_cache(kvh, d, dv, vt, page, window);
    append_range(c, K, V, 0, n);
    etk::DecodeParams p;
    p.theta.assign(std::size_t(kvh * group), 0.0f);
    for (auto& t : p.theta) t = thetas[pick(rng) % 5];
    INFO("trial " << trial << " d " << d << " dv " << dv << " kvh " << kvh << " group " << group
                  << " n " << n << " nq " << nq << " page " << page << " window " << window);
    const Run fast = run_fast(c, Q, p, true), ref = run_ref(c, Q, p, false);
    REQUIRE(fast.stats.kept == ref.stats.kept);
    REQUIRE(fast.stats.considered == ref.stats.considered);
    const double tol = tolerance(n, max_logit(Q, K, 1.0f / std::sqrt(float(d))),
                                 latte_test::max_abs(V.data) * 1.01);
    for (std::size_t u = 0; u < fast.out.size(); ++u) REQUIRE(std::abs(fast.out[u] - ref.out[u]) <= tol);
    const Run dfast = run_fast(c, Q, p, false), dref = run_ref(c, Q, p, true);
    for (std::size_t u = 0; u < dfast.out.size(); ++u) REQUIRE(std::abs(dfast.out[u] - dref.out[u]) <= tol);
  }
}

TEST_CASE("LATTE with theta = +inf equals dense decode over the same cache, bit for bit") {
  std::mt19937 rng(5);
  for (auto vt : kTypes) {
    const std::ptrdiff_t kvh = 2, group = 3, d = 40, dv = 24, n = 333, nq = 5;
    Heads K = random_heads(kvh, n, d, rng), V = random_heads(kvh, n, dv, rng);
    Heads Q = random_heads(kvh * group, nq, d, rng);
    etk::KVCache c = make_cache(kvh, d, dv, vt, 64);
    append_range(c, K, V, 0, n);
    etk::DecodeParams p;
    p.theta = {kInf};
    const Run l = run_fast(c, Q, p, true), dn = run_fast(c, Q, p, false);
    REQUIRE(std::memcmp(l.out.data(), dn.out.data(), l.out.size() * sizeof(float)) == 0);
    REQUIRE(l.stats.filtered_fraction() == 0.0);
    // A finite theta beyond every estimate gap also keeps every key, through the estimate
    // pass (all-infinite thetas skip it).
    p.theta = {1e30f, kInf, 1e30f, 1e30f, kInf, 1e30f};
    const Run f = run_fast(c, Q, p, true);
    REQUIRE(std::memcmp(f.out.data(), dn.out.data(), f.out.size() * sizeof(float)) == 0);
    REQUIRE(f.stats.filtered_fraction() == 0.0);
  }
}

TEST_CASE("appending one by one then decoding equals prefilling at once (last row)") {
  std::mt19937 rng(6);
  const std::ptrdiff_t kvh = 2, group = 2, d = 24, dv = 16, n = 150;
  Heads K = random_heads(kvh, n, d, rng), V = random_heads(kvh, n, dv, rng);
  Heads Q = random_heads(kvh * group, 1, d, rng);
  etk::KVCache one = make_cache(kvh, d, dv, etk::KVValueType::int8, 32);
  etk::KVCache all = make_cache(kvh, d, dv, etk::KVValueType::int8, 32);
  for (std::ptrdiff_t i = 0; i < n; ++i) append_range(one, K, V, i, i + 1);
  append_range(all, K, V, 0, n);
  etk::DecodeParams p;
  p.theta = {1.0f};
  const Run a = run_fast(one, Q, p, true), b = run_fast(all, Q, p, true);
  REQUIRE(std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)) == 0);
  REQUIRE(a.stats.kept == b.stats.kept);
}

TEST_CASE("grouped-query decode equals the repeated-heads formulation, bit for bit") {
  std::mt19937 rng(8);
  const std::ptrdiff_t kvh = 2, group = 4, d = 32, dv = 20, n = 200, nq = 3;
  Heads K = random_heads(kvh, n, d, rng), V = random_heads(kvh, n, dv, rng);
  Heads Q = random_heads(kvh * group, nq, d, rng);
  Heads Kr(kvh * group, n, d), Vr(kvh * group, n, dv);
  for (std::ptrdiff_t h = 0; h < kvh * group; ++h)
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      std::memcpy(Kr.row(h, j), K.row(h / group, j), std::size_t(d) * 4);
      std::memcpy(Vr.row(h, j), V.row(h / group, j), std::size_t(dv) * 4);
    }
  for (etk::KVValueType vt : {etk::KVValueType::fp16, etk::KVValueType::fp32, etk::KVValueType::int8}) {
    etk::KVCache gqa = make_cache(kvh, d, dv, vt, 48);
    etk::KVCache rep = make_cache(kvh * group, d, dv, vt, 48);
    append_range(gqa, K, V, 0, n);
    append_range(rep, Kr, Vr, 0, n);
    etk::DecodeParams p;
    p.theta = {0.5f, 1.0f, 2.0f, 3.0f, 0.0f, 4.0f, kInf, 1.5f};
    for (bool latte : {true, false}) {
      const Run a = run_fast(gqa, Q, p, latte), b = run_fast(rep, Q, p, latte);
      REQUIRE(std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)) == 0);
      REQUIRE(a.stats.kept == b.stats.kept);
    }
  }
}

TEST_CASE("results are bit-identical for 1, 2 and 3 threads") {
  std::mt19937 rng(9);
  const std::ptrdiff_t kvh = 3, group = 2, d = 64, dv = 64, n = 700, nq = 4;
  Heads K = random_heads(kvh, n, d, rng), V = random_heads(kvh, n, dv, rng);
  Heads Q = random_heads(kvh * group, nq, d, rng);
  etk::KVCache c = make_cache(kvh, d, dv, etk::KVValueType::bf16, 64);
  append_range(c, K, V, 0, n);
  etk::DecodeParams p;
  p.theta = {2.0f};
  etk::SimpleThreadPool two(2), three(3);
  for (bool latte : {true, false}) {
    const Run a = run_fast(c, Q, p, latte), b = run_fast(c, Q, p, latte, &two),
              e = run_fast(c, Q, p, latte, &three);
    REQUIRE(std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)) == 0);
    REQUIRE(std::memcmp(a.out.data(), e.out.data(), a.out.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("a sliding window keeps the last W positions and recycles old pages") {
  std::mt19937 rng(10);
  const std::ptrdiff_t kvh = 1, d = 16, dv = 8, n = 600, W = 50;
  Heads K = random_heads(kvh, n, d, rng), V = random_heads(kvh, n, dv, rng);
  Heads Q = random_heads(kvh, 2, d, rng);
  etk::KVCache c = make_cache(kvh, d, dv, etk::KVValueType::fp32, 32, W);
  for (std::ptrdiff_t i = 0; i < n; i += 7) append_range(c, K, V, i, std::min(n, i + 7));
  REQUIRE(c.first_token() > 0);
  REQUIRE(c.first_token() <= n - W - etk::KVCache::kMaxQueries + 1);
  etk::DecodeParams p;
  p.theta = {kInf};
  const Run fast = run_fast(c, Q, p, true), ref = run_ref(c, Q, p, false);
  REQUIRE(fast.stats.considered[0] == 2 * W);
  for (std::size_t u = 0; u < fast.out.size(); ++u)
    REQUIRE(std::abs(fast.out[u] - ref.out[u]) <= tolerance(W, max_logit(Q, K, 0.25f), 4.0 * latte_test::max_abs(V.data)));
}

TEST_CASE("decode primitives on every path equal the scalar ones (integer parts bit for bit)") {
  namespace scalar = etk::detail::decode::scalar;
  namespace simd = etk::detail::decode::simd;
  paths::for_each([](etk::Isa) {
    std::mt19937 rng(41);
    std::uniform_int_distribution<int> byte(0, 255), code(-128, 127);
    for (std::ptrdiff_t L : {1, 2, 3, 7, 16, 17, 33}) {
      const std::ptrdiff_t P = 48;  // 3 blocks
      std::vector<std::uint8_t> hi(std::size_t(3 * L * 64)), lo(std::size_t(P * L * 4));
      for (auto& x : hi) x = std::uint8_t(byte(rng));
      for (auto& x : lo) x = std::uint8_t(byte(rng));
      for (std::size_t i = 0; i < 64 && L == 3; ++i) hi[i] = lo[i] = 0xFF;  // nibble extremes
      for (int nrows : {1, 2, 3, 4, 5, 9}) {
        const std::ptrdiff_t ldq = 8 * L;
        std::vector<std::int8_t> q(std::size_t(nrows * ldq));
        for (auto& x : q) x = std::int8_t(code(rng));
        if (nrows == 5) std::fill(q.begin(), q.end(), std::int8_t(-128));  // the extreme code
        std::vector<std::int32_t> a(std::size_t(nrows * 20), -1), b(a);
        simd::block_dots(hi.data() + L * 64, L, q.data(), ldq, nrows, 128, a.data(), 20);
        scalar::block_dots(hi.data() + L * 64, L, q.data(), ldq, nrows, 128, b.data(), 20);
        REQUIRE(a == b);
        // The split the LATTE step relies on: q = 16 (q >> 4) + (q & 15), so the MS4B part
        // of the exact score is 16 x (estimate) + (the LS4B query nibbles' dot).
        std::vector<std::int8_t> qh(q.size()), ql(q.size());
        for (std::size_t i = 0; i < q.size(); ++i)
          qh[i] = std::int8_t(etk::detail::latte::nibble_hi(q[i])), ql[i] = std::int8_t(etk::detail::latte::nibble_lo(q[i]));
        std::vector<std::int32_t> e(a.size(), -1), f(a.size(), -1);
        simd::block_dots(hi.data() + L * 64, L, qh.data(), ldq, nrows, 8, e.data(), 20);
        simd::block_dots(hi.data() + L * 64, L, ql.data(), ldq, nrows, 15, f.data(), 20);
        for (std::size_t i = 0; i < a.size(); ++i)
          if (i % 20 < 16) REQUIRE(16 * e[i] + f[i] == a[i]);
        // Both planes of a block at once: q . (code + 128), the code byte + 128 of each
        // dim being 16 x its MS4B nibble (stored + 8) + its LS4B nibble (block 0 holds the
        // nibble extremes when L = 3).
        for (std::ptrdiff_t blk : {0, 1}) {
          std::vector<std::int32_t> g(a.size(), -1);
          simd::block_scores(hi.data() + blk * L * 64, lo.data() + blk * 16 * L * 4, L, q.data(), ldq,
                             nrows, g.data(), 20);
          for (int r = 0; r < nrows; ++r)
            for (std::ptrdiff_t kk = 0; kk < 16; ++kk) {
              std::int32_t want = 0;
              for (std::ptrdiff_t l = 0; l < L; ++l)
                for (std::ptrdiff_t t = 0; t < 4; ++t) {
                  const int h = hi[std::size_t(blk * L * 64 + l * 64 + kk * 4 + t)];
                  const int w = lo[std::size_t((16 * blk + kk) * L * 4 + l * 4 + t)];
                  want += q[std::size_t(r * ldq + 4 * l + t)] * (16 * (h & 15) + (w & 15)) +
                          q[std::size_t(r * ldq + 4 * L + 4 * l + t)] * (16 * (h >> 4) + (w >> 4));
                }
              REQUIRE(g[std::size_t(r * 20 + kk)] == want);
            }
        }
        // Survivors in increasing order, some blocks skipped, odd counts.
        std::vector<std::int32_t> idx;
        for (std::int32_t j = 0; j < P; j += 1 + j % 3) idx.push_back(j);
        for (std::ptrdiff_t n : {std::ptrdiff_t(1), std::ptrdiff_t(15), std::ptrdiff_t(idx.size())}) {
          std::vector<std::int32_t> x(static_cast<std::size_t>(n)), y(x);
          simd::lo_dots(lo.data(), L, idx.data(), n, q.data(), x.data());
          scalar::lo_dots(lo.data(), L, idx.data(), n, q.data(), y.data());
          REQUIRE(x == y);
        }
      }
    }
    // The int16 partial sums of a path at their bound: every nibble 15 and every query
    // byte at the extreme its bound allows, over line counts around the chunk sizes.
    for (std::ptrdiff_t L : {4, 5, 16, 36, 37, 68, 69}) {
      const std::vector<std::uint8_t> hi(std::size_t(L * 64), 0xFF);
      for (int qmax : {8, 15, 128})
        for (int sign : {-1, 1}) {
          const int v = sign < 0 ? -qmax : std::min(qmax, 127);
          if (qmax == 15 && sign < 0) continue;  // LS4B query nibbles are in [0, 15]
          const std::vector<std::int8_t> q(std::size_t(3 * 8 * L), std::int8_t(v));
          std::vector<std::int32_t> a(48, -1), b(48, -2);
          simd::block_dots(hi.data(), L, q.data(), 8 * L, 3, qmax, a.data(), 16);
          scalar::block_dots(hi.data(), L, q.data(), 8 * L, 3, qmax, b.data(), 16);
          REQUIRE(a == b);
          REQUIRE(a[0] == 15 * v * 8 * std::int32_t(L));
        }
    }
    // Selection: the same survivors, for ranges inside a block and cuts at the boundary.
    std::uniform_int_distribution<std::int32_t> est(-3000, 3000);
    for (int trial = 0; trial < 200; ++trial) {
      std::int32_t E[16];
      for (auto& e : E) e = est(rng);
      const int l0 = trial % 5, l1 = 16 - trial % 7;
      const std::int32_t corr = est(rng);
      const float unit = 0.01f * float(1 + trial % 9), cut = float(E[trial % 16] - corr) * unit;
      std::int32_t x[32], y[32];
      const std::ptrdiff_t m = simd::select_block(E, l0, l1, corr, unit, cut, 32 * trial, x);
      REQUIRE(m == scalar::select_block(E, l0, l1, corr, unit, cut, 32 * trial, y));
      REQUIRE(std::equal(x, x + m, y));
    }
    // Weighted value sums: both paths add n products per lane, each sum within
    // n * eps * sum_s |w_s v_s| of the exact one (recursive summation, products exact in
    // the FMA or rounded once: (n + 1) eps), so they differ by at most twice that.
    for (etk::KVValueType vt : kTypes)
      for (std::ptrdiff_t dv : {1, 7, 16, 33, 130}) {
        const std::ptrdiff_t n = 37, rb = dv * etk::value_type_bytes(vt);
        std::vector<std::uint8_t> vals(std::size_t(64 * rb));
        for (std::size_t i = 0; i < vals.size(); ++i) vals[i] = std::uint8_t(byte(rng) & 0x3F);  // finite
        std::vector<float> vs(4), w(std::size_t(3 * n));
        for (auto& x : vs) x = 0.01f * float(1 + byte(rng));
        for (auto& x : w) x = float(byte(rng)) / 255.0f;
        std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
        for (std::ptrdiff_t s = 0; s < n; ++s) idx[std::size_t(s)] = std::int32_t((s * 7) % 64);
        std::vector<float> a(static_cast<std::size_t>(3 * dv)), b(a), one(static_cast<std::size_t>(dv));
        simd::weighted_values_rows(vt, w.data(), n, 3, idx.data(), n, vals.data(), rb, vs.data(), dv, a.data(), dv);
        scalar::weighted_values_rows(vt, w.data(), n, 3, idx.data(), n, vals.data(), rb, vs.data(), dv, b.data(), dv);
        for (int r = 0; r < 3; ++r) {
          simd::weighted_values(vt, w.data() + r * n, idx.data(), n, vals.data(), rb, vs.data(), dv, one.data());
          // One row alone gives the bits it gets when sharing a pass with others.
          REQUIRE(std::memcmp(one.data(), a.data() + r * dv, std::size_t(dv) * sizeof(float)) == 0);
        }
        for (int r = 0; r < 3; ++r)
          for (std::ptrdiff_t c = 0; c < dv; ++c) {
            double mag = 0;
            for (std::ptrdiff_t s = 0; s < n; ++s) {
              const std::uint8_t* row = vals.data() + idx[std::size_t(s)] * rb;
              float v = 0;
              switch (vt) {
                case etk::KVValueType::fp32: std::memcpy(&v, row + 4 * c, 4); break;
                case etk::KVValueType::fp16: { Eigen::half h; std::memcpy(&h, row + 2 * c, 2); v = float(h); break; }
                case etk::KVValueType::bf16: { Eigen::bfloat16 h; std::memcpy(&h, row + 2 * c, 2); v = float(h); break; }
                case etk::KVValueType::int8: v = float(static_cast<std::int8_t>(row[c])) * vs[std::size_t(idx[std::size_t(s)] / 16)]; break;
              }
              mag += std::abs(double(w[std::size_t(r * n + s)]) * double(v));
            }
            const float x = a[std::size_t(r * dv + c)], y = b[std::size_t(r * dv + c)];
            REQUIRE(std::abs(double(x) - double(y)) <= 2.0 * double(n + 2) * kEps * mag);
          }
      }
    // The token writers: the same bytes as the scalar ones, for every tail length, with
    // rounding ties (x.5 codes, fp16 / bf16 halfway values), clamped codes (|x * inv| >
    // 127.5), zeros of either sign and fp16 subnormals.
    std::uniform_real_distribution<float> wide(-200.0f, 200.0f);
    for (std::ptrdiff_t n : {1, 3, 7, 8, 9, 16, 24, 31, 32, 33, 40, 64, 65, 130}) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < x.size(); ++i) {
        switch (i % 6) {
          case 0: x[i] = wide(rng); break;
          case 1: x[i] = float(int(wide(rng))) + 0.5f; break;  // a code tie at inv = 1
          case 2: x[i] = i % 12 == 2 ? -0.0f : 3e-6f * wide(rng); break;  // fp16 subnormals
          case 3: x[i] = 1.0f + 0x1p-11f * float(1 + 2 * (i % 5)); break;  // fp16 ties
          case 4: x[i] = 1.0f + 0x1p-8f * float(1 + 2 * (i % 5)); break;  // bf16 ties
          default: x[i] = i % 2 ? 300.0f : -300.0f; break;  // clamped to +-127
        }
      }
      const std::ptrdiff_t L = (n + 7) / 8;
      for (float inv : {1.0f, 0.37f}) {
        std::vector<std::uint8_t> hi_a(std::size_t(L * 64), 0x88), hi_b(hi_a), lo_a(std::size_t(L * 4 + 4), 0x5A), lo_b(lo_a);
        etk::detail::decode::simd_pack::pack_key_row(x.data(), n, inv, hi_a.data(), lo_a.data());
        scalar::pack_key_row(x.data(), n, inv, hi_b.data(), lo_b.data());
        REQUIRE(hi_a == hi_b);
        REQUIRE(lo_a == lo_b);  // including the untouched guard bytes past the row
        std::vector<std::uint8_t> a(std::size_t(n + 16), 0x5A), b(a);
        etk::detail::decode::simd_pack::store_int8(x.data(), n, inv, a.data());
        scalar::store_int8(x.data(), n, inv, b.data());
        REQUIRE(a == b);
      }
      std::vector<std::uint8_t> a(std::size_t(2 * n + 32), 0x5A), b(a);
      etk::detail::decode::simd_pack::store_fp16(x.data(), n, a.data());
      scalar::store_fp16(x.data(), n, b.data());
      REQUIRE(a == b);
      etk::detail::decode::simd_pack::store_bf16(x.data(), n, a.data());
      scalar::store_bf16(x.data(), n, b.data());
      REQUIRE(a == b);
    }
    // An appended row's max-abs and finiteness in one pass: exact for finite rows (signed
    // zeros, subnormals, extremes), non-finite as soon as one value is.
    std::uniform_real_distribution<float> unif(-3.0f, 3.0f);
    for (std::ptrdiff_t n : {1, 7, 16, 17, 33, 130})
      for (int kind = 0; kind < 5; ++kind) {
        std::vector<float> x(static_cast<std::size_t>(n));
        for (auto& v : x) v = unif(rng);
        const std::size_t at = std::size_t(kind * 7) % x.size();
        const float special[] = {-0.0f, -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
                                 -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
        if (kind == 2) std::fill(x.begin(), x.end(), 0.0f);
        x[at] = special[kind];
        const float a = etk::detail::decode::simd_pack::maxabs_or_nonfinite(x.data(), n);
        const float b = scalar::maxabs_or_nonfinite(x.data(), n);
        REQUIRE(std::memcmp(&a, &b, 4) == 0);
        if (kind < 3) {
          float m = 0.0f;
          for (float v : x) m = std::max(m, std::abs(v));
          REQUIRE(a == m);
        } else {
          REQUIRE(!std::isfinite(a));
        }
      }
  });
}

TEST_CASE("bad arguments give etk::invalid_argument") {
  std::mt19937 rng(12);
  using etk::invalid_argument;
  etk::KVCacheConfig bad;
  bad.dim = 0;
  REQUIRE_THROWS_AS(etk::KVCache(bad), invalid_argument);
  bad.dim = 8;
  bad.page_tokens = 40;
  REQUIRE_THROWS_AS(etk::KVCache(bad), invalid_argument);
  bad.page_tokens = 32;
  bad.kv_heads = 0;
  REQUIRE_THROWS_AS(etk::KVCache(bad), invalid_argument);
  bad.kv_heads = 1;
  bad.dim = etk::detail::latte::kMaxDim + 1;
  REQUIRE_THROWS_AS(etk::KVCache(bad), invalid_argument);

  etk::KVCache c = make_cache(2, 8, 4, etk::KVValueType::fp16, 32);
  Heads K = random_heads(2, 5, 8, rng), V = random_heads(2, 5, 4, rng);
  Heads Q = random_heads(4, 2, 8, rng);
  std::vector<float> o(4 * 2 * 4);
  etk::HeadsView<float> O(o.data(), 4, 2, 4);
  etk::DecodeParams p;
  p.theta = {1.0f};
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q.view(), O, p), invalid_argument);  // empty cache
  Heads Kn = K;
  Kn.row(1, 3)[2] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_AS(append_range(c, Kn, V, 0, 5), invalid_argument);
  Heads Vbig = V;
  Vbig.row(0, 0)[0] = 1e6f;  // outside fp16
  REQUIRE_THROWS_AS(append_range(c, K, Vbig, 0, 5), invalid_argument);
  REQUIRE(c.length() == 0);  // rejected appends store nothing
  Heads K3 = random_heads(3, 5, 8, rng);
  REQUIRE_THROWS_AS(append_range(c, K3, V, 0, 5), invalid_argument);  // heads
  append_range(c, K, V, 0, 5);
  REQUIRE_NOTHROW(etk::latte_decode(c, Q.view(), O, p));
  Heads Q3 = random_heads(3, 2, 8, rng);  // 3 query heads over 2 KV heads
  std::vector<float> o3(3 * 2 * 4);
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q3.view(), etk::HeadsView<float>(o3.data(), 3, 2, 4), p), invalid_argument);
  Heads Q66 = random_heads(66, 1, 8, rng);  // 33 query heads per KV head (> kMaxGroup)
  std::vector<float> o66(66 * 4);
  REQUIRE_THROWS_AS(etk::dense_decode(c, Q66.view(), etk::HeadsView<float>(o66.data(), 66, 1, 4), p),
                    invalid_argument);
  Heads Q9 = random_heads(4, 6, 8, rng);  // more queries than cached tokens
  std::vector<float> o9(4 * 6 * 4);
  REQUIRE_THROWS_AS(etk::dense_decode(c, Q9.view(), etk::HeadsView<float>(o9.data(), 4, 6, 4), p), invalid_argument);
  p.theta = {1.0f, 2.0f};
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q.view(), O, p), invalid_argument);
  p.theta = {-1.0f};
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q.view(), O, p), invalid_argument);
  p.theta = {std::numeric_limits<float>::quiet_NaN()};
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q.view(), O, p), invalid_argument);
  p.theta = {1.0f};
  p.scale = -1.0f;
  REQUIRE_THROWS_AS(etk::latte_decode(c, Q.view(), O, p), invalid_argument);
  p.scale = 0.0f;
  Heads Qn = Q;
  Qn.row(0, 0)[0] = kInf;
  REQUIRE_THROWS_AS(etk::latte_decode(c, Qn.view(), O, p), invalid_argument);
  std::vector<float> ow(4 * 2 * 5);
  REQUIRE_THROWS_AS(etk::dense_decode(c, Q.view(), etk::HeadsView<float>(ow.data(), 4, 2, 5), p), invalid_argument);
}

// Accuracy evidence on the synthetic long-context workload (tests/support/
// decode_workload.hpp; docs/accuracy.md records the printed figures). For filter targets
// of 75% and 90% (one theta for all heads, by bisection on the measured share) it reports
// the mean dense softmax mass of the kept keys (dense = the same cache, exact int8 logits,
// double) and the mean relative L2 output error of LATTE vs dense decode, and of dense
// decode vs float attention over the unquantized keys and values (the cache's own cost).
// Asserted: more filtering never keeps more mass, and at 75% filtered the kept mass is
// >= 0.9 (the workload concentrates mass on sinks, the local window and far matches).
#include "support/decode_workload.hpp"

TEST_CASE("accuracy on the synthetic long-context workload: kept mass and output error") {
  const std::ptrdiff_t kvh = 2, group = 4, n = 4096, d = 128, nq = 1;
  const auto w = decode_workload::make(kvh, group, n, d, nq, 23);
  etk::KVCache c = make_cache(kvh, d, d, etk::KVValueType::fp16, 512);
  c.append({w.k.data(), kvh, n, d}, {w.v.data(), kvh, n, d});
  Heads Q(kvh * group, nq, d);
  Q.data = w.q;
  const float scale = 1.0f / std::sqrt(float(d));
  etk::DecodeParams dense_p;
  const Run dense = run_fast(c, Q, dense_p, false);
  // Dense probabilities over the cache (exact int8 logits), and float attention.
  std::vector<std::vector<double>> prob(std::size_t(kvh * group));
  double qerr = 0;
  for (std::ptrdiff_t hq = 0; hq < kvh * group; ++hq) {
    const std::ptrdiff_t g = hq / group;
    const float* q = Q.row(hq, 0);
    const float qs = etk::detail::decode::query_scale(q, d);
    std::vector<double> l(static_cast<std::size_t>(n)), lf(static_cast<std::size_t>(n));
    double mx = -1e300, mxf = -1e300;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      std::int32_t dot = 0;
      double f = 0;
      for (std::ptrdiff_t t = 0; t < d; ++t) {
        dot += std::int32_t(etk::detail::latte::quantize(q[t], 1.0f / qs)) * c.key_code(g, j, t);
        f += double(q[t]) * w.k[std::size_t((g * n + j) * d + t)];
      }
      l[std::size_t(j)] = double(float(dot) * etk::detail::decode::logit_unit(qs, c.key_scale(g, j), scale));
      lf[std::size_t(j)] = f * scale;
      mx = std::max(mx, l[std::size_t(j)]);
      mxf = std::max(mxf, lf[std::size_t(j)]);
    }
    double z = 0, zf = 0;
    std::vector<double> of(static_cast<std::size_t>(d), 0.0);
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      z += (l[std::size_t(j)] = std::exp(l[std::size_t(j)] - mx));
      const double pf = std::exp(lf[std::size_t(j)] - mxf);
      zf += pf;
      for (std::ptrdiff_t t = 0; t < d; ++t) of[std::size_t(t)] += pf * w.v[std::size_t((g * n + j) * d + t)];
    }
    for (double& x : l) x /= z;
    prob[std::size_t(hq)] = l;
    double num = 0, den = 0;
    for (std::ptrdiff_t t = 0; t < d; ++t) {
      const double ref = of[std::size_t(t)] / zf, e = dense.out[std::size_t(hq * d + t)] - ref;
      num += e * e;
      den += ref * ref;
    }
    qerr += std::sqrt(num / den) / double(kvh * group);
  }
  std::printf("decode accuracy (synthetic, n=%td, dim=%td, %td KV heads x %td): dense cache vs float attention: rel. L2 error %.4f\n",
              n, d, kvh, group, qerr);
  double last_mass = 1.0;
  for (double target : {0.75, 0.90, 0.95}) {
    etk::DecodeParams p;
    double lo = 0, hi = 64;
    for (int it = 0; it < 25; ++it) {
      p.theta = {float(0.5 * (lo + hi))};
      const Run r = run_fast(c, Q, p, true);
      (r.stats.filtered_fraction() > target ? lo : hi) = p.theta[0];
    }
    p.theta = {float(hi)};
    const Run r = run_fast(c, Q, p, true);
    std::vector<std::vector<std::ptrdiff_t>> kept;
    std::vector<float> ro(r.out.size());
    etk::reference::decode_attention(c, Q.view(), {ro.data(), kvh * group, nq, d}, p, false, nullptr, &kept);
    double mass = 0, err = 0;
    for (std::ptrdiff_t hq = 0; hq < kvh * group; ++hq) {
      double m = 0, num = 0, den = 0;
      for (std::ptrdiff_t j : kept[std::size_t(hq)]) m += prob[std::size_t(hq)][std::size_t(j)];
      for (std::ptrdiff_t t = 0; t < d; ++t) {
        const double e = double(r.out[std::size_t(hq * d + t)]) - dense.out[std::size_t(hq * d + t)];
        num += e * e;
        den += double(dense.out[std::size_t(hq * d + t)]) * dense.out[std::size_t(hq * d + t)];
      }
      mass += m / double(kvh * group);
      err += std::sqrt(num / den) / double(kvh * group);
    }
    std::printf("  filtered %.3f (theta %.3f): kept dense mass %.4f, LATTE vs dense rel. L2 error %.4f\n",
                r.stats.filtered_fraction(), double(p.theta[0]), mass, err);
    REQUIRE(mass <= last_mass + 1e-12);
    if (target == 0.75) REQUIRE(mass >= 0.9);
    last_mass = mass;
  }
}

// The cost of the cache's key-scale rule (kv_cache.hpp: each 16-token block takes the
// max-abs / 127 of its own keys when it opens, re-quantizing its <= 15 earlier rows when a
// token raises that max) against one scale per head (the max-abs / 127 of all the head's
// keys, known in advance: the best a single scale can do, and what a growing cache cannot
// know). Both rules go through the same double-precision model of the step (int8 query
// codes, the MS4B estimate in logit units, the margin cut, exact int8 logits of the kept
// keys, unquantized values), so only the key scales differ. Printed (docs/accuracy.md):
// the cache's own error (every key kept) vs float attention, and at 75% / 90% filtered
// (one theta per rule, by bisection) the kept float softmax mass, the output error vs
// float attention and the agreement of the two rules' kept sets. Asserted (what
// docs/accuracy.md states): the block rule's cache error is within 10% of the single
// scale's, and at equal filtered shares it keeps within 0.005 of its softmax mass.
TEST_CASE("accuracy: per-block key scales vs one scale per head on the synthetic workload") {
  const std::ptrdiff_t kvh = 2, group = 4, n = 4096, d = 128, rows = kvh * group;
  const auto w = decode_workload::make(kvh, group, n, d, 1, 23);
  const double scale = 1.0 / std::sqrt(double(d));
  // Float attention: probabilities and outputs per query row.
  std::vector<std::vector<double>> pf(static_cast<std::size_t>(rows));
  std::vector<std::vector<double>> of(std::size_t(rows), std::vector<double>(std::size_t(d), 0.0));
  for (std::ptrdiff_t hq = 0; hq < rows; ++hq) {
    const std::ptrdiff_t g = hq / group;
    const float* q = &w.q[std::size_t(hq * d)];
    std::vector<double>& p = pf[std::size_t(hq)];
    p.resize(std::size_t(n));
    double mx = -1e300, z = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      double f = 0;
      for (std::ptrdiff_t t = 0; t < d; ++t) f += double(q[t]) * w.k[std::size_t((g * n + j) * d + t)];
      mx = std::max(mx, p[std::size_t(j)] = f * scale);
    }
    for (double& x : p) z += (x = std::exp(x - mx));
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      p[std::size_t(j)] /= z;
      for (std::ptrdiff_t t = 0; t < d; ++t)
        of[std::size_t(hq)][std::size_t(t)] += p[std::size_t(j)] * w.v[std::size_t((g * n + j) * d + t)];
    }
  }
  // Per rule (keys per scale block: 16, or n for one scale per head): each row's estimate
  // and exact logit of every key.
  struct Rule {
    std::vector<std::vector<double>> est, logit;
  };
  const auto model = [&](std::ptrdiff_t block) {
    Rule r{std::vector<std::vector<double>>(std::size_t(rows)), std::vector<std::vector<double>>(std::size_t(rows))};
    for (std::ptrdiff_t hq = 0; hq < rows; ++hq) {
      const std::ptrdiff_t g = hq / group;
      const float* q = &w.q[std::size_t(hq * d)];
      const float qs = etk::detail::decode::query_scale(q, d);
      std::vector<std::int8_t> qc(static_cast<std::size_t>(d));
      for (std::ptrdiff_t t = 0; t < d; ++t) qc[std::size_t(t)] = etk::detail::latte::quantize(q[t], 1.0f / qs);
      for (std::ptrdiff_t b0 = 0; b0 < n; b0 += block) {
        const float* kb = &w.k[std::size_t((g * n + b0) * d)];
        const float ks = etk::detail::latte::maxabs_scale(kb, block, d, d);
        for (std::ptrdiff_t j = b0; j < b0 + block; ++j) {
          std::int32_t e = 0, s = 0;
          for (std::ptrdiff_t t = 0; t < d; ++t) {
            const std::int8_t kc = etk::detail::latte::quantize(w.k[std::size_t((g * n + j) * d + t)], 1.0f / ks);
            e += etk::detail::latte::nibble_hi(qc[std::size_t(t)]) * etk::detail::latte::nibble_hi(kc);
            s += std::int32_t(qc[std::size_t(t)]) * kc;
          }
          const double unit = double(qs) * double(ks) * scale;
          r.est[std::size_t(hq)].push_back(256.0 * unit * e);
          r.logit[std::size_t(hq)].push_back(unit * s);
        }
      }
    }
    return r;
  };
  const Rule blk = model(16), one = model(n);
  // Row hq's kept set at theta, and the output over it: mass, rel. L2 vs float.
  const auto kept_set = [&](const Rule& r, std::ptrdiff_t hq, double theta) {
    const std::vector<double>& e = r.est[std::size_t(hq)];
    const double m = *std::max_element(e.begin(), e.end());
    std::vector<char> k(static_cast<std::size_t>(n));
    for (std::ptrdiff_t j = 0; j < n; ++j) k[std::size_t(j)] = e[std::size_t(j)] >= m - theta;
    return k;
  };
  const auto row_error = [&](const Rule& r, std::ptrdiff_t hq, const std::vector<char>& k) {
    const std::ptrdiff_t g = hq / group;
    const std::vector<double>& l = r.logit[std::size_t(hq)];
    double mx = -1e300, z = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j)
      if (k[std::size_t(j)]) mx = std::max(mx, l[std::size_t(j)]);
    std::vector<double> o(static_cast<std::size_t>(d), 0.0);
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      if (!k[std::size_t(j)]) continue;
      const double p = std::exp(l[std::size_t(j)] - mx);
      z += p;
      for (std::ptrdiff_t t = 0; t < d; ++t) o[std::size_t(t)] += p * w.v[std::size_t((g * n + j) * d + t)];
    }
    double num = 0, den = 0;
    for (std::ptrdiff_t t = 0; t < d; ++t) {
      const double ref = of[std::size_t(hq)][std::size_t(t)], e = o[std::size_t(t)] / z - ref;
      num += e * e;
      den += ref * ref;
    }
    return std::sqrt(num / den);
  };
  const auto filtered = [&](const Rule& r, double theta) {
    std::ptrdiff_t kept = 0;
    for (std::ptrdiff_t hq = 0; hq < rows; ++hq)
      for (char c : kept_set(r, hq, theta)) kept += c;
    return 1.0 - double(kept) / double(n * rows);
  };
  const std::vector<char> all(std::size_t(n), 1);
  double eb = 0, eo = 0;
  for (std::ptrdiff_t hq = 0; hq < rows; ++hq) {
    const double b = row_error(blk, hq, all), o = row_error(one, hq, all);
    eb += b / double(rows);
    eo += o / double(rows);
  }
  std::printf("key scales (synthetic, n=%td, dim=%td, %td rows), every key kept: rel. L2 vs float %.4f per 16-token block, %.4f one per head\n",
              n, d, rows, eb, eo);
  REQUIRE(eb <= 1.1 * eo);
  for (double target : {0.75, 0.90}) {
    double theta[2];
    const Rule* rule[2] = {&blk, &one};
    for (int u = 0; u < 2; ++u) {
      double lo = 0, hi = 64;
      for (int it = 0; it < 40; ++it) {
        const double mid = 0.5 * (lo + hi);
        (filtered(*rule[u], mid) > target ? lo : hi) = mid;
      }
      theta[u] = hi;
    }
    double mass[2] = {0, 0}, err[2] = {0, 0}, agree = 0;
    for (std::ptrdiff_t hq = 0; hq < rows; ++hq) {
      std::vector<char> k[2];
      for (int u = 0; u < 2; ++u) {
        k[u] = kept_set(*rule[u], hq, theta[u]);
        for (std::ptrdiff_t j = 0; j < n; ++j) mass[u] += k[u][std::size_t(j)] * pf[std::size_t(hq)][std::size_t(j)] / double(rows);
        err[u] += row_error(*rule[u], hq, k[u]) / double(rows);
      }
      std::ptrdiff_t both = 0, either = 0;
      for (std::ptrdiff_t j = 0; j < n; ++j) {
        both += k[0][std::size_t(j)] && k[1][std::size_t(j)];
        either += k[0][std::size_t(j)] || k[1][std::size_t(j)];
      }
      agree += double(both) / double(either) / double(rows);
    }
    std::printf("  filtered %.3f / %.3f (theta %.3f / %.3f): kept float mass %.4f / %.4f, rel. L2 vs float %.4f / %.4f, kept sets' Jaccard %.3f (block / one per head)\n",
                filtered(blk, theta[0]), filtered(one, theta[1]), theta[0], theta[1], mass[0], mass[1],
                err[0], err[1], agree);
    REQUIRE(mass[0] >= mass[1] - 0.005);
  }
}

// ---- Appending (issue 14, append bar): the token writers' edge cases and the cache's
// open-block bookkeeping.

TEST_CASE("key and int8 writers: staged copy, zero padding and NaN / overflowing products equal the scalar path") {
  namespace scalar = etk::detail::decode::scalar;
  paths::for_each([](etk::Isa) {
    std::mt19937 rng(77);
    std::uniform_real_distribution<float> unif(-3.0f, 3.0f);
    const float fmax = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
    for (std::ptrdiff_t n : {1, 5, 8, 15, 16, 17, 31, 63, 64, 65, 100, 127, 128, 129, 200}) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < x.size(); ++i) {
        switch (i % 7) {
          case 0: x[i] = 0.0f; break;   // 0 * inf is NaN: quantize gives -127
          case 1: x[i] = -0.0f; break;
          case 2: x[i] = tiny; break;
          case 3: x[i] = i % 2 ? fmax : -fmax; break;  // products beyond +-2^31 and +-inf
          default: x[i] = unif(rng); break;
        }
      }
      const std::ptrdiff_t L = (n + 7) / 8;
      // 1/scale of a block with a subnormal max-abs is +inf; 1e30 overflows int32.
      for (float inv : {1.0f, 42.3f, 1e30f, kInf}) {
        std::vector<std::uint8_t> hi_a(std::size_t(L * 64), 0x88), hi_b(hi_a), lo_a(std::size_t(L * 4 + 4), 0x5A), lo_b(lo_a);
        std::vector<float> copy(static_cast<std::size_t>(n + 16), 7.0f);
        etk::detail::decode::simd_pack::pack_key_row(x.data(), n, inv, hi_a.data(), lo_a.data(), copy.data());
        scalar::pack_key_row(x.data(), n, inv, hi_b.data(), lo_b.data(), nullptr);
        REQUIRE(hi_a == hi_b);
        REQUIRE(lo_a == lo_b);
        REQUIRE(std::memcmp(copy.data(), x.data(), std::size_t(n) * sizeof(float)) == 0);
        for (std::size_t i = x.size(); i < copy.size(); ++i) REQUIRE(copy[i] == 7.0f);  // nothing past the row
        std::vector<float> copy_b(copy.size(), 7.0f);
        scalar::pack_key_row(x.data(), n, inv, hi_b.data(), lo_b.data(), copy_b.data());
        REQUIRE(copy_b == copy);
        // The bytes are the codes of detail::latte::quantize, padding dims code 0.
        for (std::ptrdiff_t t = 0; t < 8 * L; ++t) {
          const int shift = int((t % 8) / 4) * 4;
          const int h = (hi_a[std::size_t((t / 8) * 64 + t % 4)] >> shift) & 15;
          const int l = (lo_a[std::size_t((t / 8) * 4 + t % 4)] >> shift) & 15;
          const int expect = t < n ? etk::detail::latte::quantize(x[std::size_t(t)], inv) : 0;
          REQUIRE(16 * (h - 8) + l == expect);
        }
        std::vector<std::uint8_t> a(std::size_t(n + 16), 0x5A), b(a);
        etk::detail::decode::simd_pack::store_int8(x.data(), n, inv, a.data());
        scalar::store_int8(x.data(), n, inv, b.data());
        REQUIRE(a == b);
      }
    }
  });
}

TEST_CASE("a block whose max-abs is subnormal (scale 0) has the reference codes, one by one == at once") {
  const float tiny = std::numeric_limits<float>::denorm_min();
  for (auto vt : kTypes) {
    const std::ptrdiff_t H = 2, n = 21, d = 70, dv = 9;
    std::mt19937 rng(8);
    Heads K = random_heads(H, n, d, rng), V = random_heads(H, n, dv, rng);
    for (std::ptrdiff_t j = 0; j < 16; ++j)  // head 1's first block: zeros and +-denorm_min
      for (std::ptrdiff_t t = 0; t < d; ++t) K.row(1, j)[t] = (j + t) % 3 == 0 ? 0.0f : ((j + t) % 3 == 1 ? tiny : -tiny);
    for (std::ptrdiff_t j = 0; j < 16; ++j)
      for (std::ptrdiff_t c = 0; c < dv; ++c) V.row(1, j)[c] = j % 2 ? tiny : 0.0f;
    etk::KVCache one = make_cache(H, d, dv, vt, 16), all = make_cache(H, d, dv, vt, 16);
    for (std::ptrdiff_t i = 0; i < n; ++i) append_range(one, K, V, i, i + 1);
    append_range(all, K, V, 0, n);
    for (std::ptrdiff_t h = 0; h < H; ++h)
      for (std::ptrdiff_t j = 0; j < n; ++j) {
        const std::ptrdiff_t b0 = j / 16 * 16, rows = std::min<std::ptrdiff_t>(16, n - b0);
        const float ks = etk::detail::latte::maxabs_scale(K.row(h, b0), rows, d, d);
        if (h == 1 && j < 16) REQUIRE(ks == 0.0f);  // denorm_min / 127 rounds to 0
        REQUIRE(one.key_scale(h, j) == ks);
        REQUIRE(all.key_scale(h, j) == ks);
        for (std::ptrdiff_t t = 0; t < d; ++t) {
          REQUIRE(one.key_code(h, j, t) == etk::detail::latte::quantize(K.row(h, j)[t], 1.0f / ks));
          REQUIRE(all.key_code(h, j, t) == one.key_code(h, j, t));
        }
        for (std::ptrdiff_t c = 0; c < dv; ++c) REQUIRE(one.value(h, j, c) == all.value(h, j, c));
      }
  }
}

TEST_CASE("the open block reads as code 0 past the last appended row, on a recycled page too") {
  const std::ptrdiff_t H = 3, d = 40, n = 16 * 9 + 5;
  std::mt19937 rng(9);
  Heads K = random_heads(H, n, d, rng), V = random_heads(H, n, d, rng);
  etk::KVCache c = make_cache(H, d, d, etk::KVValueType::fp16, 32, 16);  // pages recycle
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    append_range(c, K, V, i, i + 1);
    const std::ptrdiff_t len = c.length(), b0 = (len - 1) / 16 * 16;
    for (std::ptrdiff_t h = 0; h < H; ++h) {
      const auto pv = c.page(b0 / c.page_tokens(), h);
      const std::uint8_t* hi = pv.hi + (b0 % c.page_tokens()) / 16 * c.hi_block_bytes();
      for (std::ptrdiff_t kk = len - b0; kk < 16; ++kk)
        for (std::ptrdiff_t l = 0; l < c.lines(); ++l)
          for (int t = 0; t < 4; ++t) REQUIRE(hi[l * 64 + kk * 4 + t] == 0x88);
      for (std::ptrdiff_t j = b0; j < len; ++j)
        for (std::ptrdiff_t t = 0; t < d; ++t)
          REQUIRE(c.key_code(h, j, t) == etk::detail::latte::quantize(K.row(h, j)[t], 1.0f / c.key_scale(h, j)));
    }
  }
}
