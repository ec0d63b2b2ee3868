// Tests of the LATTE kernel against its reference twin and against dense attention.
// etk:isa-variants (built scalar, AVX2 and AVX-512 VNNI; each compared with the reference)
#include <catch2/catch.hpp>
#include <etk/attention/dense.hpp>
#include <etk/attention/latte.hpp>
#include <etk/attention/reference/latte.hpp>

#include <cstring>
#include <limits>

#include "support/latte_util.hpp"

using latte_test::Heads;
using latte_test::random_heads;

namespace {

const float kInf = std::numeric_limits<float>::infinity();
const double kEps = std::numeric_limits<float>::epsilon();

std::int64_t int_dot(const std::vector<std::int8_t>& a, const std::vector<std::int8_t>& b) {
  std::int64_t s = 0;
  for (std::size_t t = 0; t < a.size(); ++t) s += std::int64_t(a[t]) * b[t];
  return s;
}

// Runs the kernel's own estimate + select + reuse path on raw int8 codes: one query, the
// given keys (theta = +inf: every key survives); returns the exact scores.
std::vector<std::int32_t> kernel_exact(const std::vector<std::int8_t>& q,
                                       const std::vector<std::vector<std::int8_t>>& keys) {
  const auto d = std::ptrdiff_t(q.size());
  const auto nk = std::ptrdiff_t(keys.size());
  etk::detail::latte::Workspace ws;
  ws.resize(nk, d);
  const auto& L = ws.L;
  const auto& k = ws.keys;
  const auto& t = ws.tile;
  for (std::ptrdiff_t j = 0; j < nk; ++j)
    etk::detail::latte::scalar::pack_key_codes(keys[std::size_t(j)].data(), d, j, L.G, L.Dp, k.kpack,
                                       k.k8, k.kl);
  const std::int32_t corr = etk::detail::latte::scalar::pack_query_codes(q.data(), d, t.qh, t.qh16, t.ql);
  etk::detail::latte::simd::estimate_tile(t.qh, 4 * L.G, 1, k.kpack, L.G, L.nblk, t.E, L.ldE);
  const std::int32_t lowest = std::numeric_limits<std::int32_t>::min();
  REQUIRE(etk::detail::latte::simd::select(t.E, nk, lowest, t.idx) == nk);
  std::vector<std::int32_t> S(std::size_t(nk) + 16);
  etk::detail::latte::simd::exact_scores(t.qh16, t.ql, k.k8, k.kl, L.Dp, t.E, t.idx, nk, corr, S.data());
  S.resize(std::size_t(nk));
  return S;
}

struct Case {
  std::ptrdiff_t heads, nq, nk, d, dv;
};

// A key padding mask that leaves keys [0, length) of every head (n_k bytes).
std::vector<std::uint8_t> prefix_padding(std::ptrdiff_t nk, std::ptrdiff_t length) {
  std::vector<std::uint8_t> pad(std::size_t(nk), 0);
  for (std::ptrdiff_t j = length; j < nk; ++j) pad[std::size_t(j)] = 1;
  return pad;
}

// |O_fast - O_ref| bound when both use the same logits l (int8 mode). The fast path's
// weights 2^(l*log2e - lmax*log2e) (etk/attention/softmax.hpp): the fused exponent is
// off by <= eps*(|lmax| + |l - lmax|)*log2e, i.e. a relative weight error <= 3*Lmax*eps
// with Lmax bounding |l|, plus <= 8 eps from the polynomial and the scaling; the sum of
// m <= nk weights and the P*V sums over m terms add <= m*eps each (relative to z and to
// z*max|v|), the final scaling 1 eps; the double reference is exact at this scale.
double same_logit_tol(std::ptrdiff_t nk, double lmax_abs, double vmax) {
  return (2.0 * double(nk) + 16.0 + 3.0 * lmax_abs) * kEps * vmax;
}

}  // namespace

// The two LATTE kernels behind one function type (the fast one also takes a Context).
void fast_latte(etk::HeadsView<const float> q, etk::HeadsView<const float> k, etk::HeadsView<const float> v,
                etk::HeadsView<float> o, const etk::LatteParams& p, etk::LatteStats* st) {
  etk::latte_attention(q, k, v, o, p, st);
}
void reference_latte(etk::HeadsView<const float> q, etk::HeadsView<const float> k, etk::HeadsView<const float> v,
                     etk::HeadsView<float> o, const etk::LatteParams& p, etk::LatteStats* st) {
  etk::reference::latte_attention(q, k, v, o, p, st);
}

TEST_CASE("reuse identity: 256*qH.kH + 16*(qH.kL + qL.kH) + qL.kL == q.k, lengths 1..257") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(-128, 127);
  for (std::ptrdiff_t d = 1; d <= 257; ++d) {
    std::vector<std::int8_t> q(static_cast<std::size_t>(d)), k(static_cast<std::size_t>(d));
    for (int trial = 0; trial < 3; ++trial) {
      for (std::ptrdiff_t t = 0; t < d; ++t) {
        q[std::size_t(t)] = std::int8_t(code(rng));
        k[std::size_t(t)] = std::int8_t(code(rng));
      }
      if (trial == 1) std::fill(q.begin(), q.end(), std::int8_t(-128));
      if (trial == 2) {
        std::fill(q.begin(), q.end(), std::int8_t(127));
        std::fill(k.begin(), k.end(), std::int8_t(-128));
      }
      std::int64_t hh = 0, mix = 0, ll = 0;
      for (std::ptrdiff_t t = 0; t < d; ++t) {
        const int qh = etk::detail::latte::nibble_hi(q[std::size_t(t)]), ql = etk::detail::latte::nibble_lo(q[std::size_t(t)]);
        const int kh = etk::detail::latte::nibble_hi(k[std::size_t(t)]), kl = etk::detail::latte::nibble_lo(k[std::size_t(t)]);
        REQUIRE(qh >= -8);
        REQUIRE(qh <= 7);
        REQUIRE(ql >= 0);
        REQUIRE(ql <= 15);
        hh += qh * kh;
        mix += qh * kl + ql * kh;
        ll += ql * kl;
      }
      REQUIRE(256 * hh + 16 * mix + ll == int_dot(q, k));
      // The kernel's path, on this key and 18 more (random, all -128, all 127), so that
      // the batched survivor reduction and the 16-key blocks see full and ragged groups.
      std::vector<std::vector<std::int8_t>> keys{k};
      for (int extra = 0; extra < 18; ++extra) {
        std::vector<std::int8_t> x(static_cast<std::size_t>(d));
        for (auto& v : x) v = std::int8_t(extra == 0 ? -128 : extra == 1 ? 127 : code(rng));
        keys.push_back(x);
      }
      const auto S = kernel_exact(q, keys);
      for (std::size_t j = 0; j < keys.size(); ++j) REQUIRE(std::int64_t(S[j]) == int_dot(q, keys[j]));
    }
  }
  // Every extreme pair, alone.
  for (int a : {-128, -127, -1, 0, 1, 127})
    for (int b : {-128, -127, -1, 0, 1, 127}) {
      std::vector<std::int8_t> q{std::int8_t(a)}, k{std::int8_t(b)};
      REQUIRE(std::int64_t(kernel_exact(q, {k})[0]) == std::int64_t(a) * b);
    }
}

TEST_CASE("exact scores past the estimate's int16 runs: dims 513 and 1030 (2 and 3 runs)") {
  std::mt19937 rng(29);
  std::uniform_int_distribution<int> code(-128, 127);
  for (std::ptrdiff_t d : {513, 1030}) {
    std::vector<std::int8_t> q(static_cast<std::size_t>(d));
    for (auto& v : q) v = std::int8_t(code(rng));
    std::vector<std::vector<std::int8_t>> keys(3, std::vector<std::int8_t>(static_cast<std::size_t>(d)));
    for (auto& v : keys[0]) v = std::int8_t(code(rng));
    std::fill(keys[1].begin(), keys[1].end(), std::int8_t(-128));
    std::fill(keys[2].begin(), keys[2].end(), std::int8_t(127));
    const auto S = kernel_exact(q, keys);
    for (std::size_t j = 0; j < keys.size(); ++j) REQUIRE(std::int64_t(S[j]) == int_dot(q, keys[j]));
    // The estimates themselves, against their definition qH.(kH + 8).
    etk::detail::latte::Workspace ws;
    ws.resize(3, d);
    for (std::ptrdiff_t j = 0; j < 3; ++j)
      etk::detail::latte::scalar::pack_key_codes(keys[std::size_t(j)].data(), d, j, ws.L.G, ws.L.Dp, ws.keys.kpack,
                                         ws.keys.k8, ws.keys.kl);
    etk::detail::latte::scalar::pack_query_codes(q.data(), d, ws.tile.qh, ws.tile.qh16, ws.tile.ql);
    etk::detail::latte::simd::estimate_tile(ws.tile.qh, 4 * ws.L.G, 1, ws.keys.kpack, ws.L.G, ws.L.nblk, ws.tile.E, ws.L.ldE);
    for (std::size_t j = 0; j < 3; ++j) {
      std::int64_t e = 0;
      for (std::size_t t = 0; t < q.size(); ++t)
        e += std::int64_t(etk::detail::latte::nibble_hi(q[t])) * (etk::detail::latte::nibble_hi(keys[j][t]) + 8);
      REQUIRE(std::int64_t(ws.tile.E[j]) == e);
    }
  }
}

TEST_CASE("LATTE primitives: packing and selection equal the scalar path byte for byte, P*V within rounding") {
  std::mt19937 rng(23);
  std::normal_distribution<float> nd(0.0f, 60.0f);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  for (std::ptrdiff_t d : {1, 3, 4, 15, 16, 17, 31, 63, 64, 65, 130}) {
    // Codes from x * inv: ties (k + 0.5), the clamp (beyond +-127) and plain values.
    std::vector<float> x(static_cast<std::size_t>(d));
    for (auto& v : x) v = pick(rng) % 4 == 0 ? float(pick(rng) % 301 - 150) + 0.5f : nd(rng);
    const std::ptrdiff_t nk = 37, j = pick(rng) % nk;
    etk::detail::latte::Workspace a, b;
    a.resize(nk, d);
    b.resize(nk, d);
    const auto& L = a.L;
    etk::detail::latte::scalar::pack_key(x.data(), d, 1.0f, j, L.G, L.Dp, a.keys.kpack, a.keys.k8, a.keys.kl);
    etk::detail::latte::simd::pack_key(x.data(), d, 1.0f, j, L.G, L.Dp, b.keys.kpack, b.keys.k8, b.keys.kl);
    REQUIRE(std::memcmp(a.mem.data(), b.mem.data(), L.keys_bytes) == 0);
    const std::int32_t ca = etk::detail::latte::scalar::pack_query(x.data(), d, 1.0f, a.tile.qh, a.tile.qh16, a.tile.ql);
    const std::int32_t cb = etk::detail::latte::simd::pack_query(x.data(), d, 1.0f, b.tile.qh, b.tile.qh16, b.tile.ql);
    REQUIRE(ca == cb);
    REQUIRE(std::memcmp(a.tile.qh, b.tile.qh, std::size_t(4 * L.G)) == 0);
    REQUIRE(std::memcmp(a.tile.qh16, b.tile.qh16, std::size_t(L.Dp)) == 0);
    REQUIRE(std::memcmp(a.tile.ql, b.tile.ql, std::size_t(L.Dp)) == 0);
  }
  const std::int32_t lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  for (std::ptrdiff_t n = 1; n <= 70; ++n) {
    std::vector<std::int32_t> E(static_cast<std::size_t>(n));
    for (auto& e : E) e = pick(rng) % 8 == 0 ? (pick(rng) % 2 ? lo : hi) : pick(rng) % 200 - 100;
    for (std::int32_t cut : {lo, hi, -50, 0, 37}) {
      std::vector<std::int32_t> ia(std::size_t(n) + 16), ib(std::size_t(n) + 16);
      const std::ptrdiff_t ma = etk::detail::latte::scalar::select(E.data(), n, cut, ia.data());
      const std::ptrdiff_t mb = etk::detail::latte::simd::select(E.data(), n, cut, ib.data());
      REQUIRE(ma == mb);
      REQUIRE(std::equal(ia.begin(), ia.begin() + ma, ib.begin()));
    }
    // P*V over m = n / 2 + 1 of n rows, every output width the column loops split.
    for (std::ptrdiff_t dv : {1, 7, 8, 9, 63, 64, 65, 130}) {
      const std::ptrdiff_t stride = dv + 3, m = n / 2 + 1;
      std::vector<float> V(static_cast<std::size_t>(n * stride)), p(static_cast<std::size_t>(m)), o(static_cast<std::size_t>(dv));
      std::vector<std::int32_t> idx(static_cast<std::size_t>(m));
      for (auto& v : V) v = nd(rng);
      for (std::ptrdiff_t s = 0; s < m; ++s) {
        p[std::size_t(s)] = float(pick(rng)) / float(1 << 20);
        idx[std::size_t(s)] = std::int32_t(pick(rng) % n);
      }
      const float scale = n % 2 ? 1.0f : 0.37f;  // the outputs' factor (1 / the weight sum)
      etk::detail::latte::simd::gather_pv(p.data(), idx.data(), m, V.data(), stride, dv, o.data(), scale);
      for (std::ptrdiff_t c = 0; c < dv; ++c) {
        double ref = 0, mag = 0;
        for (std::ptrdiff_t s = 0; s < m; ++s) {
          const double t = double(p[std::size_t(s)]) * V[std::size_t(idx[std::size_t(s)] * stride + c)];
          ref += t, mag += std::abs(t);
        }
        // m rounded additions (and products), each off by <= eps of the running magnitude,
        // and the scaling.
        REQUIRE(std::abs(o[std::size_t(c)] - ref * scale) <= double(m + 2) * kEps * mag * scale);
      }
    }
  }
}

TEST_CASE("survivor softmax weights: every path within float rounding of a double softmax") {
  // w[s] = exp(S[s] * logit) / sum over the m scores, for positive, negative and zero
  // logit factors, lengths around the vector width and the int8 score extremes.
  std::mt19937 rng(23);
  const std::int32_t big = 127 * 128 * 64;
  std::uniform_int_distribution<std::int32_t> score(-big, big);
  for (std::ptrdiff_t m : {1, 2, 15, 16, 17, 31, 33, 100}) {
    for (float logit : {3e-5f, 1e-3f, -2e-4f, 0.0f}) {
      std::vector<std::int32_t> S(static_cast<std::size_t>(m));
      for (auto& x : S) x = score(rng);
      if (m > 2) S[0] = big, S[1] = -big;
      const float mult = logit * float(1.4426950408889634);
      std::vector<double> ref(S.size());
      double top = -1e300, z = 0;
      for (std::int32_t x : S) top = std::max(top, double(x) * logit);
      for (std::size_t s = 0; s < S.size(); ++s) z += ref[s] = std::exp(double(S[s]) * logit - top);
      // lmax bounds |S * logit|: the exponent is off by <= 2 eps * (|lmax| + |S * logit|),
      // the polynomial and scaling by <= 8 eps, the sum of m weights by <= m eps.
      const double lmax = double(big) * std::abs(logit);
      const double tol = (4.0 * lmax + 8.0 + double(m)) * kEps;
      for (int path = 0; path < 2; ++path) {
        std::vector<float> w(S.size() + 16, -1.0f);
        const float inv = path == 0 ? etk::detail::latte::scalar::score_weights(S.data(), m, mult, w.data())
                                    : etk::detail::latte::simd::score_weights(S.data(), m, mult, w.data());
        for (std::size_t s = 0; s < S.size(); ++s) w[s] *= inv;
        for (std::size_t s = 0; s < S.size(); ++s) {
          INFO("m " << m << " logit " << logit << " path " << path << " s " << s << " S " << S[s] << " w " << w[s] << " ref " << ref[s] / z);
          REQUIRE(std::abs(w[s] - ref[s] / z) <= tol);
        }
      }
    }
  }
}

TEST_CASE("fast LATTE equals the reference: same kept sets, outputs within float rounding") {
  std::mt19937 rng(11);
  const std::ptrdiff_t lens[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 63, 65};
  const std::ptrdiff_t dims[] = {1, 3, 4, 15, 16, 17, 63, 64, 65, 130};
  const float thetas[] = {0.0f, 0.3f, 1.5f, 4.0f, kInf};
  std::uniform_int_distribution<int> pick(0, 1000);
  for (int trial = 0; trial < 120; ++trial) {
    Case c{1 + pick(rng) % 3, lens[pick(rng) % 14], lens[pick(rng) % 14], dims[pick(rng) % 10],
           dims[pick(rng) % 10]};
    const float sigma = 0.5f + 0.01f * float(pick(rng) % 300);
    Heads Q = random_heads(c.heads, c.nq, c.d, rng, sigma), K = random_heads(c.heads, c.nk, c.d, rng, sigma),
          V = random_heads(c.heads, c.nk, c.dv, rng);
    Heads Of(c.heads, c.nq, c.dv), Or(c.heads, c.nq, c.dv);
    etk::LatteParams p;
    for (std::ptrdiff_t h = 0; h < c.heads; ++h) p.theta.push_back(thetas[pick(rng) % 5]);
    p.attention.causal = pick(rng) % 3 == 0;
    // Key padding: none, one row shared by the heads, or a random row per head.
    const int mask = pick(rng) % 3;
    std::vector<std::uint8_t> pad(std::size_t(mask == 2 ? c.heads * c.nk : c.nk));
    for (auto& b : pad) b = pick(rng) % 4 == 0;
    if (mask) p.attention.key_padding = {pad.data(), std::ptrdiff_t(pad.size())};
    if (pick(rng) % 2) p.scores = etk::LatteScores::fp32;
    INFO("heads " << c.heads << " nq " << c.nq << " nk " << c.nk << " d " << c.d << " dv " << c.dv
                  << " causal " << p.attention.causal << " mask " << mask);
    etk::LatteStats sf, sr;
    etk::latte_attention(Q.view(), K.view(), V.view(), Of.mview(), p, &sf);
    etk::reference::latte_attention(Q.view(), K.view(), V.view(), Or.mview(), p, &sr);
    REQUIRE(sf.considered == sr.considered);
    REQUIRE(sf.kept == sr.kept);
    // Logits are at most softmax_scale * max|q| * max|k| * 1.01 (int8 rounding slack).
    const double lmax = 1.01 * latte_test::max_row_norm(Q) * latte_test::max_row_norm(K) /
                        std::sqrt(double(c.d));
    const double vmax = latte_test::max_abs(V.data);
    // fp32 scores: the float dot products are off the double ones by <= (d+1)*eps*lmax,
    // which moves O by <= 2x that times max|v| (see the theta = +inf test below).
    const double fp32 = p.scores == etk::LatteScores::fp32 ? 2.0 * (double(c.d) + 1.0) * kEps * lmax * vmax : 0.0;
    const double tol = same_logit_tol(c.nk, lmax, vmax) + fp32;
    for (std::size_t e = 0; e < Of.data.size(); ++e) REQUIRE(std::abs(Of.data[e] - Or.data[e]) <= tol);
  }
}

TEST_CASE("theta = +inf keeps every key and reproduces dense attention") {
  std::mt19937 rng(3);
  for (std::ptrdiff_t n : {1, 7, 33, 65, 130}) {
    for (std::ptrdiff_t d : {15, 64}) {
      Heads Q = random_heads(2, n, d, rng), K = random_heads(2, n, d, rng), V = random_heads(2, n, d, rng);
      Heads O(2, n, d);
      etk::LatteParams p;
      p.theta = {kInf};
      p.scores = etk::LatteScores::fp32;
      for (bool causal : {false, true}) {
        p.attention.causal = causal;
        etk::LatteStats st;
        etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
        for (std::size_t h = 0; h < 2; ++h) REQUIRE(st.kept[h] == st.considered[h]);
        // Float logits differ from the double ones by <= d*eps*scale*|q||k| (dot product
        // rounding, plus 1 eps for the scaling); that moves every p_j/z by <= 2 of it
        // (relative), hence O by <= 2*dl*max|v|, on top of same_logit_tol.
        const double qk = latte_test::max_row_norm(Q) * latte_test::max_row_norm(K) / std::sqrt(double(d));
        const double dl = (double(d) + 1.0) * kEps * qk;
        const double vmax = latte_test::max_abs(V.data);
        const double tol = 2.0 * dl * vmax + same_logit_tol(n, qk, vmax);
        for (std::ptrdiff_t h = 0; h < 2; ++h)
          for (std::ptrdiff_t i = 0; i < n; ++i) {
            const auto ref = latte_test::dense_row(Q, K, V, h, i, 1.0 / std::sqrt(double(d)),
                                                   causal ? i + 1 : n);
            for (std::ptrdiff_t c = 0; c < d; ++c)
              REQUIRE(std::abs(O.row(h, i)[c] - ref[std::size_t(c)]) <= tol);
          }
      }
    }
  }
}

TEST_CASE("strided, misaligned views give the same result as dense copies") {
  std::mt19937 rng(17);
  for (std::ptrdiff_t d : {15, 64, 65}) {
    const std::ptrdiff_t H = 2, n = 37, rs = d + 3;  // padded rows, data offset by 1 float
    Heads Q = random_heads(H, n, d, rng), K = random_heads(H, n, d, rng), V = random_heads(H, n, d, rng);
    std::vector<float> qs(std::size_t(1 + H * n * rs)), ks(qs.size()), vs(qs.size()), os(qs.size());
    for (std::ptrdiff_t h = 0; h < H; ++h)
      for (std::ptrdiff_t i = 0; i < n; ++i)
        for (std::ptrdiff_t t = 0; t < d; ++t) {
          const auto at = std::size_t(1 + (h * n + i) * rs + t);
          qs[at] = Q.row(h, i)[t], ks[at] = K.row(h, i)[t], vs[at] = V.row(h, i)[t];
        }
    auto view = [&](std::vector<float>& b) { return etk::HeadsView<float>(b.data() + 1, H, n, d, rs, n * rs); };
    etk::LatteParams p;
    p.theta = {1.0f, 3.0f};
    Heads O(H, n, d);
    etk::LatteStats s1, s2;
    etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &s1);
    etk::latte_attention(view(qs), view(ks), view(vs), view(os), p, &s2);
    REQUIRE(s1.kept == s2.kept);
    for (std::ptrdiff_t h = 0; h < H; ++h)
      for (std::ptrdiff_t i = 0; i < n; ++i)
        for (std::ptrdiff_t t = 0; t < d; ++t)
          REQUIRE(O.row(h, i)[t] == os[std::size_t(1 + (h * n + i) * rs + t)]);  // same arithmetic
  }
}

TEST_CASE("theta = +inf with fp32 scores is etk::dense_attention bit for bit") {
  std::mt19937 rng(19);
  for (std::ptrdiff_t d : {15, 64, 96, 112}) {
    const std::ptrdiff_t H = 3, n = 65;
    Heads Q = random_heads(H, n, d, rng), K = random_heads(H, n, d, rng), V = random_heads(H, n, d, rng);
    Heads O(H, n, d), D(H, n, d);
    std::vector<std::uint8_t> pad(std::size_t(H * n), 0);
    for (std::size_t e = 0; e < pad.size(); e += 7) pad[e] = 1;
    etk::LatteParams p;
    p.theta = {kInf};
    p.scores = etk::LatteScores::fp32;
    p.attention.causal = true;
    p.attention.key_padding = {pad.data(), H * n};
    etk::SimpleThreadPool pool(2);
    etk::LatteStats st;
    etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st, etk::Context{&pool});
    etk::dense_attention(Q.view(), K.view(), V.view(), D.mview(), p.attention);
    CHECK(std::memcmp(O.data.data(), D.data.data(), O.data.size() * sizeof(float)) == 0);
    // The reference twin agrees: every visible key is considered and kept.
    etk::LatteStats sr;
    etk::reference::latte_attention(Q.view(), K.view(), V.view(), D.mview(), p, &sr);
    CHECK(st.considered == sr.considered);
    CHECK(st.kept == sr.kept);
    CHECK(st.kept == st.considered);
  }
}

TEST_CASE("one default scale: LATTE's logit scale is dense attention's, for every dim") {
  // On main LATTE rounded 1/sqrt(dim) in float and dense in double: one ulp apart at 96, 112.
  std::mt19937 rng(23);
  for (std::ptrdiff_t d = 1; d <= 4096; ++d) {
    const float s = etk::default_attention_scale(d);
    // The double quotient, rounded once, is the float nearest to 1/sqrt(d): check it
    // against long double.
    CHECK(s == static_cast<float>(1.0L / std::sqrt(static_cast<long double>(d))));
  }
  for (std::ptrdiff_t d : {1, 17, 64, 96, 112, 128}) {
    Heads Q = random_heads(1, 2, d, rng), K = random_heads(1, 3, d, rng), V = random_heads(1, 3, 2, rng);
    etk::LatteParams p;
    p.theta = {1.0f};
    const auto sc = etk::detail::latte::head_scales(p, 0, Q.view(), K.view());
    const auto sh = etk::detail::check_attention(Q.view(), K.view(), nullptr, p.attention);
    CHECK(sc.softmax_scale == sh.scale);
    CHECK(sc.softmax_scale == etk::default_attention_scale(d));
  }
}

TEST_CASE("a padded batch folded into the heads: each sequence as if alone") {
  // Two sequences of 5 and 9 tokens padded to 9, batch folded into heads (2 heads each):
  // the per-head padding mask must make the short sequence's rows equal (bit for bit) to a
  // call on its 5 real keys, whatever the padding holds. q_scale is fixed (padding query
  // rows would move a max-abs query scale); the key scale ignores padding keys.
  std::mt19937 rng(29);
  const std::ptrdiff_t H = 2, n = 9, short_len = 5, d = 24;
  Heads Q = random_heads(2 * H, n, d, rng), K = random_heads(2 * H, n, d, rng),
        V = random_heads(2 * H, n, d, rng);
  for (std::ptrdiff_t h = 0; h < H; ++h)  // garbage in the short sequence's padding keys
    for (std::ptrdiff_t j = short_len; j < n; ++j)
      for (std::ptrdiff_t t = 0; t < d; ++t) K.row(h, j)[t] = V.row(h, j)[t] = 1e3f;
  std::vector<std::uint8_t> pad(std::size_t(2 * H * n), 0);
  for (std::ptrdiff_t h = 0; h < H; ++h)
    for (std::ptrdiff_t j = short_len; j < n; ++j) pad[std::size_t(h * n + j)] = 1;
  for (auto scores : {etk::LatteScores::int8_reuse, etk::LatteScores::fp32}) {
    etk::LatteParams p;
    p.theta = {1.5f};
    p.q_scale.assign(std::size_t(2 * H), 0.03f);
    p.scores = scores;
    p.attention.key_padding = {pad.data(), std::ptrdiff_t(pad.size())};
    Heads O(2 * H, n, d);
    etk::LatteStats st;
    etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
    etk::LatteParams alone = p;
    alone.attention.key_padding = {};
    alone.q_scale.assign(std::size_t(H), 0.03f);
    const etk::HeadsView<const float> qs(Q.data.data(), H, short_len, d, d, n * d),
        ks(K.data.data(), H, short_len, d, d, n * d), vs(V.data.data(), H, short_len, d, d, n * d);
    Heads Oa(H, short_len, d);
    etk::LatteStats sa;
    etk::latte_attention(qs, ks, vs, Oa.mview(), alone, &sa);
    for (std::ptrdiff_t h = 0; h < H; ++h)
      for (std::ptrdiff_t i = 0; i < short_len; ++i)
        CHECK(std::memcmp(O.row(h, i), Oa.row(h, i), std::size_t(d) * sizeof(float)) == 0);
    CHECK(st.considered[0] == std::int64_t(n) * short_len);
    CHECK(st.considered[2] == std::int64_t(n) * n);
    etk::LatteStats sr;
    etk::reference::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &sr);
    CHECK(sr.kept == st.kept);
  }
}

TEST_CASE("LATTE on a pool: bit-identical for any pool, planned arena not reallocated") {
  std::mt19937 rng(31);
  const std::ptrdiff_t H = 3, nq = 150, nk = 97, d = 40;
  Heads Q = random_heads(H, nq, d, rng), K = random_heads(H, nk, d, rng), V = random_heads(H, nk, 24, rng);
  std::vector<std::uint8_t> pad(std::size_t(nk), 0);
  pad[3] = pad[50] = 1;
  etk::LatteParams p;
  p.theta = {0.5f, 2.0f, 4.0f};
  p.attention.key_padding = {pad.data(), nk};
  Heads O1(H, nq, 24), On(H, nq, 24);
  etk::LatteStats s1, sn;
  etk::latte_attention(Q.view(), K.view(), V.view(), O1.mview(), p, &s1);
  for (int threads : {1, 2, 3, 8}) {
    etk::SimpleThreadPool pool(threads);
    etk::ScratchArena arena;
    const etk::Context ctx{&pool, &arena};
    arena.reserve(etk::latte_attention_scratch_bytes(H, nq, nk, d, 24, p, ctx));
    const void* reserved = arena.data();
    std::fill(On.data.begin(), On.data.end(), -1.0f);
    etk::latte_attention(Q.view(), K.view(), V.view(), On.mview(), p, &sn, ctx);
    CHECK(arena.data() == reserved);
    CHECK(std::memcmp(O1.data.data(), On.data.data(), O1.data.size() * sizeof(float)) == 0);
    CHECK(sn.kept == s1.kept);
    CHECK(sn.considered == s1.considered);
  }
}

TEST_CASE("scratch bytes without dv plan for dv = d; an arena reserved to them grows for a wider V") {
  std::mt19937 rng(37);
  const std::ptrdiff_t H = 2, nq = 40, nk = 70, d = 16, dv = 48;
  etk::LatteParams p;
  p.theta = {1.0f, 3.0f};
  etk::SimpleThreadPool pool(2);
  const etk::Context ctx{&pool, nullptr};
  CHECK(etk::latte_attention_scratch_bytes(H, nq, nk, d, p, ctx) ==
        etk::latte_attention_scratch_bytes(H, nq, nk, d, d, p, ctx));
  const std::size_t narrow = etk::latte_attention_scratch_bytes(H, nq, nk, d, p, ctx);
  REQUIRE(narrow < etk::latte_attention_scratch_bytes(H, nq, nk, d, dv, p, ctx));
  Heads Q = random_heads(H, nq, d, rng), K = random_heads(H, nk, d, rng), V = random_heads(H, nk, dv, rng);
  Heads O(H, nq, dv), Or(H, nq, dv);
  etk::ScratchArena arena;
  arena.reserve(narrow);
  const etk::Context with_arena{&pool, &arena};
  etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, nullptr, with_arena);
  etk::latte_attention(Q.view(), K.view(), V.view(), Or.mview(), p);
  CHECK(std::memcmp(O.data.data(), Or.data.data(), O.data.size() * sizeof(float)) == 0);
}

TEST_CASE("scales from the finiteness check's maxima equal the scales of a second scan") {
  // With params.attention.check_finite the call takes each head's max |Q| and |K| from the
  // check; without it, it scans the heads. Same floats, so the same bits, for both kinds of
  // score, with and without a padding row (whose keys must not set the key scale).
  std::mt19937 rng(41);
  const std::ptrdiff_t H = 3, nq = 33, nk = 61, d = 20;
  Heads Q = random_heads(H, nq, d, rng), K = random_heads(H, nk, d, rng), V = random_heads(H, nk, d, rng);
  for (float& x : K.data) x *= 0.25f;
  for (std::ptrdiff_t j = 0; j < d; ++j) K.data[std::size_t(7 * d + j)] = 40.0f;  // head 0, key 7: the largest
  std::vector<std::uint8_t> pad(std::size_t(nk), 0);
  pad[7] = 1;
  for (const bool padded : {false, true})
    for (const auto scores : {etk::LatteScores::int8_reuse, etk::LatteScores::fp32}) {
      etk::LatteParams p;
      p.theta = {2.0f};
      p.scores = scores;
      if (padded) p.attention.key_padding = {pad.data(), nk};
      Heads Oc(H, nq, d), Ou(H, nq, d);
      etk::LatteStats sc, su;
      etk::latte_attention(Q.view(), K.view(), V.view(), Oc.mview(), p, &sc);
      p.attention.check_finite = false;
      etk::latte_attention(Q.view(), K.view(), V.view(), Ou.mview(), p, &su);
      CHECK(std::memcmp(Oc.data.data(), Ou.data.data(), Oc.data.size() * sizeof(float)) == 0);
      CHECK(sc.kept == su.kept);
      etk::LatteStats sr;
      Heads Or(H, nq, d);
      etk::reference::latte_attention(Q.view(), K.view(), V.view(), Or.mview(), p, &sr);
      CHECK(sr.kept == sc.kept);
    }
}

TEST_CASE("shifting a row's scores by a constant leaves its kept set unchanged") {
  // Appending a component a_i to query i and a constant b to every key adds a_i*b to every
  // score of row i (and a_i_H * b_H to every estimate of the row). With fixed scales the
  // other codes do not move, so the kept set must be the same.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 60; ++trial) {
    const std::ptrdiff_t nk = 40 + trial, d = 16;
    Heads Q = random_heads(1, 1, d, rng, 1.5f), K = random_heads(1, nk, d, rng, 1.5f), V = random_heads(1, nk, 8, rng);
    Heads Q2(1, 1, d + 1), K2(1, nk, d + 1), O(1, 1, 8);
    for (std::ptrdiff_t t = 0; t < d; ++t) Q2.data[std::size_t(t)] = Q.data[std::size_t(t)];
    Q2.data[std::size_t(d)] = 3.0f * nd(rng);
    const float b = 2.0f * nd(rng);
    for (std::ptrdiff_t j = 0; j < nk; ++j) {
      for (std::ptrdiff_t t = 0; t < d; ++t) K2.row(0, j)[t] = K.row(0, j)[t];
      K2.row(0, j)[d] = b;
    }
    etk::LatteParams p;
    p.theta = {0.2f + 0.1f * float(trial % 20)};
    p.q_scale = {0.05f};
    p.k_scale = {0.05f};
    p.attention.scale = 0.25f;
    etk::LatteStats s1, s2;
    etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &s1);
    etk::latte_attention(Q2.view(), K2.view(), V.view(), O.mview(), p, &s2);
    REQUIRE(s1.kept[0] == s2.kept[0]);
    REQUIRE(s1.kept[0] >= 1);
    REQUIRE(s1.kept[0] < nk);  // the property is not vacuous: something was filtered
  }
}

TEST_CASE("theta = 0 keeps exactly the best-estimate key(s); ties survive") {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 40; ++trial) {
    const std::ptrdiff_t nk = 1 + trial * 3, d = 17;
    Heads Q = random_heads(1, 1, d, rng), K = random_heads(1, nk, d, rng), V = random_heads(1, nk, 5, rng);
    // Duplicate a key so that ties occur.
    if (nk > 2) std::copy(K.row(0, 0), K.row(0, 0) + d, K.row(0, nk - 1));
    Heads O(1, 1, 5);
    etk::LatteParams p;
    p.theta = {0.0f};
    etk::LatteStats st;
    etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
    // Count the keys with the maximal MS4B estimate directly.
    const float sq = etk::detail::latte::maxabs_scale(Q.data.data(), 1, d, d);
    const float sk = etk::detail::latte::maxabs_scale(K.data.data(), nk, d, d);
    std::vector<int> e(std::size_t(nk), 0);
    for (std::ptrdiff_t j = 0; j < nk; ++j)
      for (std::ptrdiff_t t = 0; t < d; ++t)
        e[std::size_t(j)] += etk::detail::latte::nibble_hi(etk::detail::latte::quantize(Q.data[std::size_t(t)], 1.0f / sq)) *
                             etk::detail::latte::nibble_hi(etk::detail::latte::quantize(K.row(0, j)[t], 1.0f / sk));
    const int emax = *std::max_element(e.begin(), e.end());
    REQUIRE(st.kept[0] == std::count(e.begin(), e.end(), emax));
  }
}

TEST_CASE("zero rows: every score ties, every key survives") {
  std::mt19937 rng(2);
  const std::ptrdiff_t n = 37, d = 15;
  Heads Q = random_heads(1, n, d, rng), K = random_heads(1, n, d, rng), V = random_heads(1, n, 4, rng);
  std::fill(Q.row(0, 5), Q.row(0, 5) + d, 0.0f);
  Heads O(1, n, 4);
  etk::LatteParams p;
  p.theta = {0.0f};
  etk::LatteStats st;
  etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
  // Row 5 keeps all n keys; every other row keeps >= 1.
  REQUIRE(st.kept[0] >= n + (n - 1));
  // Row 5's output is the plain mean of V (all scores exactly 0, all weights exactly 1,
  // so only the sums round: <= (2n + 1) eps * max|v|).
  for (std::ptrdiff_t c = 0; c < 4; ++c) {
    double mean = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j) mean += V.row(0, j)[c];
    mean /= double(n);
    REQUIRE(std::abs(O.row(0, 5)[c] - mean) <= (2.0 * n + 8) * kEps * latte_test::max_abs(V.data));
  }
  // All-zero K: all n*n pairs tie and survive.
  std::fill(K.data.begin(), K.data.end(), 0.0f);
  etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
  REQUIRE(st.kept[0] == n * n);
  REQUIRE(st.filtered(0) == 0);
}

TEST_CASE("masks: padding keys and fully masked rows") {
  std::mt19937 rng(4);
  const std::ptrdiff_t n = 20, d = 8;
  Heads Q = random_heads(1, n, d, rng), K = random_heads(1, n, d, rng), V = random_heads(1, n, d, rng);
  Heads O(1, n, d);
  etk::LatteParams p;
  p.theta = {kInf};
  std::vector<std::uint8_t> pad = prefix_padding(n, 0);
  p.attention.key_padding = {pad.data(), n};
  etk::LatteStats st;
  etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
  for (float v : O.data) REQUIRE(v == 0.0f);
  REQUIRE(st.considered[0] == 0);
  pad = prefix_padding(n, 6);
  p.attention.key_padding = {pad.data(), n};
  p.attention.causal = true;  // query i sees min(6, i + 1) keys
  etk::latte_attention(Q.view(), K.view(), V.view(), O.mview(), p, &st);
  std::int64_t expect = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) expect += std::min<std::ptrdiff_t>(6, i + 1);
  REQUIRE(st.considered[0] == expect);
  REQUIRE(st.kept[0] == expect);
}

TEST_CASE("bad input is rejected with etk::invalid_argument naming the argument") {
  std::mt19937 rng(1);
  Heads Q = random_heads(2, 5, 4, rng), K = random_heads(2, 6, 4, rng), V = random_heads(2, 6, 3, rng);
  Heads O(2, 5, 3);
  etk::LatteParams ok;
  ok.theta = {1.0f, 2.0f};
  using Fn = void (*)(etk::HeadsView<const float>, etk::HeadsView<const float>,
                      etk::HeadsView<const float>, etk::HeadsView<float>, const etk::LatteParams&,
                      etk::LatteStats*, const etk::Context&);
  for (Fn fn : {Fn(&fast_latte), Fn(&reference_latte)}) {
    CHECK_NOTHROW(fn(Q.view(), K.view(), V.view(), O.mview(), ok, nullptr, {}));
    auto expect = [&](etk::HeadsView<const float> q, etk::HeadsView<const float> k,
                      etk::HeadsView<const float> v, etk::HeadsView<float> o,
                      const etk::LatteParams& p, const char* name) {
      CHECK_THROWS_AS(fn(q, k, v, o, p, nullptr, {}), etk::invalid_argument);
      CHECK_THROWS_WITH(fn(q, k, v, o, p, nullptr, {}), Catch::Contains(name));
    };
    Heads K3 = random_heads(3, 6, 4, rng), Kd = random_heads(2, 6, 5, rng), V5 = random_heads(2, 5, 3, rng);
    Heads Ow(2, 5, 4);
    // The shared attention check names q, k, v, out as dense_attention does.
    expect(Q.view(), K3.view(), V.view(), O.mview(), ok, "'k'");
    expect(Q.view(), Kd.view(), V.view(), O.mview(), ok, "'k'");
    expect(Q.view(), K.view(), V5.view(), O.mview(), ok, "'v'");
    expect(Q.view(), K.view(), V.view(), Ow.mview(), ok, "'out'");
    // dim 0 and empty sequences.
    expect({Q.data.data(), 2, 5, 0}, K.view(), V.view(), O.mview(), ok, "'q'");
    expect(Q.view(), {K.data.data(), 2, 0, 4}, V.view(), O.mview(), ok, "'k'");
    expect({Q.data.data(), 2, 0, 4}, K.view(), V.view(), O.mview(), ok, "'q'");
    // Thresholds.
    for (float bad : {-0.5f, std::numeric_limits<float>::quiet_NaN(), -kInf}) {
      etk::LatteParams p = ok;
      p.theta[1] = bad;
      expect(Q.view(), K.view(), V.view(), O.mview(), p, "params.theta");
    }
    etk::LatteParams p3 = ok;
    p3.theta = {1.0f, 1.0f, 1.0f};
    expect(Q.view(), K.view(), V.view(), O.mview(), p3, "params.theta");
    // Scales.
    for (float bad : {0.0f, -1.0f, kInf, std::numeric_limits<float>::quiet_NaN()}) {
      etk::LatteParams p = ok;
      p.q_scale = {1.0f, bad};
      expect(Q.view(), K.view(), V.view(), O.mview(), p, "params.q_scale");
      p = ok;
      p.k_scale = {bad, 1.0f};
      expect(Q.view(), K.view(), V.view(), O.mview(), p, "params.k_scale");
    }
    etk::LatteParams ps = ok;
    ps.k_scale = {1.0f};
    expect(Q.view(), K.view(), V.view(), O.mview(), ps, "params.k_scale");
    ps = ok;
    ps.attention.scale = -1.0f;
    expect(Q.view(), K.view(), V.view(), O.mview(), ps, "params.scale");
    ps = ok;
    const std::vector<std::uint8_t> pad7(7, 0);
    ps.attention.key_padding = {pad7.data(), 7};
    expect(Q.view(), K.view(), V.view(), O.mview(), ps, "params.key_padding");
    // Non-finite data.
    for (Heads* x : {&Q, &K, &V}) {
      const float keep = x->data[3];
      x->data[3] = std::numeric_limits<float>::quiet_NaN();
      const char* name = x == &Q ? "'q'" : x == &K ? "'k'" : "'v'";
      expect(Q.view(), K.view(), V.view(), O.mview(), ok, name);
      x->data[3] = keep;
    }
    // A head dim beyond the int32 bound.
    const std::ptrdiff_t big = etk::detail::latte::kMaxDim + 1;
    Heads Qb(1, 1, big), Kb(1, 1, big), Vb(1, 1, 1);
    Heads Ob(1, 1, 1);
    etk::LatteParams p1;
    p1.theta = {1.0f};
    expect(Qb.view(), Kb.view(), Vb.view(), Ob.mview(), p1, "'q'");
  }
}

TEST_CASE("LATTE rejects an output that aliases an input, in both kernels") {
  std::mt19937 rng(21);
  Heads Q = random_heads(2, 6, 4, rng), K = random_heads(2, 6, 4, rng), V = random_heads(2, 6, 4, rng);
  etk::LatteParams p;
  p.theta = {kInf};
  using Fn = void (*)(etk::HeadsView<const float>, etk::HeadsView<const float>,
                      etk::HeadsView<const float>, etk::HeadsView<float>, const etk::LatteParams&,
                      etk::LatteStats*);
  for (Fn fn : {Fn(&fast_latte), Fn(&reference_latte)}) {
    CHECK_THROWS_WITH(fn(Q.view(), K.view(), V.view(), V.mview(), p, nullptr), Catch::Contains("'out' overlaps argument 'v'"));
    CHECK_THROWS_WITH(fn(Q.view(), K.view(), V.view(), K.mview(), p, nullptr), Catch::Contains("'out' overlaps argument 'k'"));
    CHECK_THROWS_WITH(fn(Q.view(), K.view(), V.view(), Q.mview(), p, nullptr), Catch::Contains("'out' overlaps argument 'q'"));
    // One shared element is enough.
    std::vector<float> buf(V.data.size() + 47);
    std::copy(V.data.begin(), V.data.end(), buf.begin());
    const etk::HeadsView<const float> v(buf.data(), 2, 6, 4);
    CHECK_THROWS_AS(fn(Q.view(), K.view(), v, etk::HeadsView<float>(buf.data() + 47, 2, 6, 4), p, nullptr),
                    etk::invalid_argument);
    Heads O(2, 6, 4);
    CHECK_NOTHROW(fn(Q.view(), K.view(), V.view(), O.mview(), p, nullptr));
  }
}

TEST_CASE("LATTE with finite but extreme Q, K or softmax_scale: an error or a finite answer, never NaN") {
  std::mt19937 rng(22);
  using Fn = void (*)(etk::HeadsView<const float>, etk::HeadsView<const float>,
                      etk::HeadsView<const float>, etk::HeadsView<float>, const etk::LatteParams&,
                      etk::LatteStats*);
  for (Fn fn : {Fn(&fast_latte), Fn(&reference_latte)})
    for (etk::LatteScores scores : {etk::LatteScores::int8_reuse, etk::LatteScores::fp32}) {
      INFO("scores " << int(scores));
      etk::LatteParams p;
      p.theta = {kInf};
      p.scores = scores;
      Heads Q = random_heads(2, 9, 16, rng, 1e20f), K = random_heads(2, 9, 16, rng, 1e20f), V = random_heads(2, 9, 3, rng);
      Heads O(2, 9, 3);
      CHECK_THROWS_WITH(fn(Q.view(), K.view(), V.view(), O.mview(), p, nullptr), Catch::Contains("logits"));
      Heads q1 = random_heads(2, 9, 16, rng), k1 = random_heads(2, 9, 16, rng);
      etk::LatteParams huge = p;
      huge.attention.scale = std::numeric_limits<float>::max();
      CHECK_THROWS_WITH(fn(q1.view(), k1.view(), V.view(), O.mview(), huge, nullptr), Catch::Contains("'params"));
      // Large logits within the accepted range: finite, a convex combination of V's rows.
      Heads qb = random_heads(2, 9, 16, rng, 1e17f), kb = random_heads(2, 9, 16, rng, 1e17f);
      REQUIRE_NOTHROW(fn(qb.view(), kb.view(), V.view(), O.mview(), p, nullptr));
      for (std::ptrdiff_t h = 0; h < 2; ++h)
        for (std::ptrdiff_t i = 0; i < 9; ++i)
          for (std::ptrdiff_t c = 0; c < 3; ++c) {
            double lo = 1e300, hi = -1e300;
            for (std::ptrdiff_t j = 0; j < 9; ++j) lo = std::min(lo, double(V.row(h, j)[c])), hi = std::max(hi, double(V.row(h, j)[c]));
            const float o = O.row(h, i)[c];
            CHECK(std::isfinite(o));
            CHECK(o >= lo - 1e-5);
            CHECK(o <= hi + 1e-5);
          }
    }
}
