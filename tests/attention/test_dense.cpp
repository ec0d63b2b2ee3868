// Tests of dense multi-head attention (etk/attention/dense.hpp) against its reference
// twin over random shapes, masks and strides, with the error bounds derived in
// docs/numerics.md "Dense attention"; thread-count invariance; fully masked rows; the
// softmax helper; bad input; and that memory does not grow with n_q * n_k.
// etk:isa-variants
#include <catch2/catch.hpp>
#include <etk/attention/dense.hpp>
#include <etk/attention/reference/dense.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/attention_util.hpp"

using etk_test::HeadsBuffer;

namespace {

const std::vector<std::ptrdiff_t> kSeqs = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                           12, 13, 14, 15, 16, 17, 31, 33, 63, 65, 1000};
const std::vector<std::ptrdiff_t> kDims = {15, 16, 64, 120};

struct Case {
  std::ptrdiff_t heads, n_q, n_k, dk, dv;
  bool causal, padding, per_head_padding, strided;
  float scale;  // 0: default
};

struct Inputs {
  HeadsBuffer q, k, v;
  std::vector<std::uint8_t> pad;
  etk::AttentionParams params;
};

Inputs make_inputs(const Case& c, std::mt19937& rng) {
  const std::ptrdiff_t rp = c.strided ? 3 : 0, hp = c.strided ? 5 : 0;
  Inputs in{HeadsBuffer(c.heads, c.n_q, c.dk, rp, hp), HeadsBuffer(c.heads, c.n_k, c.dk, rp + 1, hp),
            HeadsBuffer(c.heads, c.n_k, c.dv, rp + 2, hp), {}, {}};
  // Logit spread of a few units (sigma_q * sigma_k * sqrt(dk) * scale ~ 2): softmax far
  // from uniform and from one-hot, so both the exponentials and the sums matter.
  in.q.fill_normal(rng, 1.4f);
  in.k.fill_normal(rng, 1.4f);
  in.v.fill_normal(rng, 1.0f);
  in.params.causal = c.causal;
  in.params.scale = c.scale;
  if (c.padding) {
    in.pad.resize(static_cast<std::size_t>(c.per_head_padding ? c.heads * c.n_k : c.n_k));
    std::bernoulli_distribution masked(0.3);
    for (auto& m : in.pad) m = masked(rng) ? 1 : 0;
    in.params.key_padding = {in.pad.data(), static_cast<std::ptrdiff_t>(in.pad.size())};
  }
  return in;
}

double resolved_scale(const Case& c) {
  return c.scale == 0.0f ? 1.0 / std::sqrt(double(c.dk)) : double(float(c.scale));
}

double max_abs(const HeadsBuffer& b) {
  double m = 0;
  for (std::ptrdiff_t h = 0; h < b.heads; ++h)
    for (std::ptrdiff_t i = 0; i < b.seq; ++i)
      for (std::ptrdiff_t d = 0; d < b.dim; ++d) m = std::max(m, std::fabs(double(b.at(h, i, d))));
  return m;
}

// Compares the fast output (and probabilities) with the reference under the derived bounds.
void check_case(const Case& c, std::mt19937& rng) {
  INFO("heads " << c.heads << " n_q " << c.n_q << " n_k " << c.n_k << " dk " << c.dk << " dv "
                << c.dv << " causal " << c.causal << " padding " << c.padding << " per-head "
                << c.per_head_padding << " strided " << c.strided << " scale " << c.scale);
  Inputs in = make_inputs(c, rng);
  const std::ptrdiff_t rp = c.strided ? 2 : 0;
  HeadsBuffer out(c.heads, c.n_q, c.dv, rp, rp), ref(c.heads, c.n_q, c.dv);
  HeadsBuffer probs(c.heads, c.n_q, c.n_k, rp, rp), ref_probs(c.heads, c.n_q, c.n_k);
  HeadsBuffer out2(c.heads, c.n_q, c.dv, rp, rp);
  etk::dense_attention(in.q.cview(), in.k.cview(), in.v.cview(), out.view(), in.params);
  etk::dense_attention_with_probs(in.q.cview(), in.k.cview(), in.v.cview(), out2.view(),
                                  probs.view(), in.params);
  etk::reference::dense_attention(in.q.cview(), in.k.cview(), in.v.cview(), ref.view(), in.params);
  etk::reference::attention_probs(in.q.cview(), in.k.cview(), ref_probs.view(), in.params);

  const double scale = resolved_scale(c), vmax = max_abs(in.v);
  const std::ptrdiff_t bk = etk::detail::dense_blocks(etk::detail::attention_shape(c.n_q, c.n_k, c.dk, c.dv)).keys;
  const std::ptrdiff_t blocks = (c.n_k + bk - 1) / bk;
  int bad_out = 0, bad_out2 = 0, bad_p = 0;
  double worst = 0;
  for (std::ptrdiff_t h = 0; h < c.heads; ++h)
    for (std::ptrdiff_t i = 0; i < c.n_q; ++i) {
      const double delta = etk_test::logit_error_bound(in.q, in.k, scale, h, i);
      const double tol = etk_test::output_error_bound(delta, vmax, c.n_k, blocks);
      const double tol2 = etk_test::output_error_bound(delta, vmax, c.n_k, 1);
      for (std::ptrdiff_t d = 0; d < c.dv; ++d) {
        const double e = std::fabs(double(out.at(h, i, d)) - ref.at(h, i, d));
        worst = std::max(worst, e / tol);
        if (!(e <= tol)) ++bad_out;
        if (!(std::fabs(double(out2.at(h, i, d)) - ref.at(h, i, d)) <= tol2)) ++bad_out2;
      }
      for (std::ptrdiff_t j = 0; j < c.n_k; ++j) {
        const double p = ref_probs.at(h, i, j);
        if (!(std::fabs(double(probs.at(h, i, j)) - p) <= etk_test::prob_error_bound(delta, p, c.n_k)))
          ++bad_p;
      }
    }
  INFO("worst error / bound " << worst);
  CHECK(bad_out == 0);
  CHECK(bad_out2 == 0);
  CHECK(bad_p == 0);
  // Strided outputs: the padding between rows and heads is left untouched (still NaN).
  if (c.strided) {
    int touched = 0;
    for (std::size_t t = 0; t < out.data.size(); ++t) {
      const std::ptrdiff_t in_head = std::ptrdiff_t(t) % out.head_stride;
      const bool padding = in_head >= out.seq * out.row_stride || in_head % out.row_stride >= out.dim;
      if (padding && !std::isnan(out.data[t])) ++touched;
    }
    CHECK(touched == 0);
  }
}

}  // namespace

// The two dense kernels behind one function type (the fast one also takes a Context).
void fast_dense(etk::HeadsView<const float> q, etk::HeadsView<const float> k, etk::HeadsView<const float> v,
                etk::HeadsView<float> o, const etk::AttentionParams& p) {
  etk::dense_attention(q, k, v, o, p);
}
void reference_dense(etk::HeadsView<const float> q, etk::HeadsView<const float> k, etk::HeadsView<const float> v,
                     etk::HeadsView<float> o, const etk::AttentionParams& p) {
  etk::reference::dense_attention(q, k, v, o, p);
}

TEST_CASE("dense attention matches the reference over random shapes, masks and strides") {
  std::mt19937 rng(20261123);
  int index = 0;
  for (std::ptrdiff_t n_q : kSeqs) {
    // n_k: the same length, and a different one from the list.
    for (int variant = 0; variant < 2; ++variant, ++index) {
      Case c{};
      c.heads = n_q >= 1000 ? 1 : 1 + index % 3;
      c.n_q = n_q;
      c.n_k = variant == 0 ? n_q : kSeqs[(index * 7 + 3) % kSeqs.size()];
      if (n_q >= 1000 && variant == 1) c.n_k = 65;
      c.dk = kDims[index % kDims.size()];
      c.dv = variant == 0 ? c.dk : kDims[(index + 1) % kDims.size()];
      c.causal = (index / 2) % 2 == 1;
      c.padding = index % 3 != 0;
      c.per_head_padding = c.padding && index % 5 == 1;
      c.strided = index % 2 == 1;
      c.scale = index % 7 == 3 ? 0.37f : 0.0f;
      check_case(c, rng);
    }
  }
}

TEST_CASE("dense attention covers every dim with and without masks at seq 1000 and 63") {
  std::mt19937 rng(7);
  for (std::ptrdiff_t dk : kDims)
    for (int mask = 0; mask < 4; ++mask) {
      const std::ptrdiff_t n = dk == 64 ? 1000 : 63;
      Case c{1, n, n + (mask == 3 ? 2 : 0), dk, dk == 120 ? 15 : dk, (mask & 1) != 0, (mask & 2) != 0, false, mask == 1, 0.0f};
      check_case(c, rng);
    }
}

TEST_CASE("block sizes follow the cache sizes, with the documented clamps") {
  using etk::detail::dense_blocks_for;
  const auto sh = etk::detail::attention_shape(4096, 4096, 64, 64);
  // bq: multiple of 32 with dk * bq * 4 <= L1d; bk: multiple of 64 with bk * (ld + ldv) * 4
  // <= L2 / 2, ld = 144 and ldv = 80 at bq = 128 and dv = 64.
  CHECK(dense_blocks_for(sh, {32 * 1024, 1024 * 1024}).queries == 128);
  CHECK(dense_blocks_for(sh, {32 * 1024, 1024 * 1024}).keys == 576);
  CHECK(dense_blocks_for(sh, {48 * 1024, 2048 * 1024}).queries == 192);
  CHECK(dense_blocks_for(sh, {16 * 1024, 128 * 1024}).queries == 64);
  CHECK(dense_blocks_for(sh, {16 * 1024, 128 * 1024}).keys == 64);
  CHECK(dense_blocks_for(sh, {1024 * 1024, 16 * 1024 * 1024}).queries == 256);
  CHECK(dense_blocks_for(sh, {1024 * 1024, 16 * 1024 * 1024}).keys == 2048);
  CHECK(dense_blocks_for(etk::detail::attention_shape(5, 7, 512, 3), {32 * 1024, 1024 * 1024}).queries == 5);
  CHECK(dense_blocks_for(etk::detail::attention_shape(5, 7, 512, 3), {32 * 1024, 1024 * 1024}).keys == 7);
  const auto here = etk::detail::dense_blocks(sh);
  CHECK(here.queries >= 32);
  CHECK(here.keys >= 64);
}

TEST_CASE("results do not depend on the block sizes: the same bits across query blocks, within the bound across key blocks") {
  std::mt19937 rng(17);
  // Odd sizes, both masks; several query and key blocks each.
  for (int mask = 0; mask < 4; ++mask) {
    const Case c{2, 77, 141, 15, 33, (mask & 1) != 0, (mask & 2) != 0, mask == 3, false, 0.0f};
    INFO("mask " << mask);
    Inputs in = make_inputs(c, rng);
    HeadsBuffer ref(c.heads, c.n_q, c.dv), ref_p(c.heads, c.n_q, c.n_k);
    etk::reference::dense_attention(in.q.cview(), in.k.cview(), in.v.cview(), ref.view(), in.params);
    const double scale = resolved_scale(c), vmax = max_abs(in.v);
    const std::vector<std::ptrdiff_t> key_blocks = {1, 7, 64, 141, 4096}, query_blocks = {1, 13, 32, 77, 256};
    // The probabilities path: no block changes its arithmetic, except that under the causal
    // mask the query block sets how many keys a row's softmax sums over (the ones past the
    // block's horizon are 0 either way), which regroups the vectorised sum.
    std::vector<HeadsBuffer> probs0, out_p0;
    for (std::size_t kb = 0; kb < key_blocks.size(); ++kb) {
      HeadsBuffer first(c.heads, c.n_q, c.dv);
      for (std::size_t qb = 0; qb < query_blocks.size(); ++qb) {
        const etk::detail::DenseBlocks b{query_blocks[qb], key_blocks[kb]};
        INFO("blocks " << b.queries << " x " << b.keys);
        HeadsBuffer out(c.heads, c.n_q, c.dv), probs(c.heads, c.n_q, c.n_k), out_p(c.heads, c.n_q, c.dv);
        etk::detail::dense_attention_blocks(in.q.cview(), in.k.cview(), in.v.cview(), out.view(), in.params, {}, &b);
        auto v = in.v.cview();
        auto op = out_p.view();
        etk::detail::probs_attention_blocks(in.q.cview(), in.k.cview(), &v, &op, probs.view(), in.params, {}, &b);
        if (qb == 0) {
          first = out;
          const std::ptrdiff_t blocks = (c.n_k + b.keys - 1) / b.keys;
          int bad = 0;
          for (std::ptrdiff_t h = 0; h < c.heads; ++h)
            for (std::ptrdiff_t i = 0; i < c.n_q; ++i) {
              const double tol = etk_test::output_error_bound(etk_test::logit_error_bound(in.q, in.k, scale, h, i),
                                                              vmax, c.n_k, blocks);
              for (std::ptrdiff_t d = 0; d < c.dv; ++d)
                if (!(std::fabs(double(out.at(h, i, d)) - ref.at(h, i, d)) <= tol)) ++bad;
            }
          CHECK(bad == 0);
        } else {
          CHECK(out.data == first.data);
        }
        if (kb == 0) {
          probs0.push_back(probs);
          out_p0.push_back(out_p);
        }
        const std::size_t base = c.causal ? qb : 0;
        CHECK(probs.data == probs0[base].data);
        CHECK(out_p.data == out_p0[base].data);
      }
    }
  }
  const etk::detail::DenseBlocks zero{0, 64};
  HeadsBuffer q(1, 4, 8), out(1, 4, 8);
  q.fill_normal(rng, 1.0f);
  CHECK_THROWS_AS(etk::detail::dense_attention_blocks(q.cview(), q.cview(), q.cview(), out.view(), {}, {}, &zero),
                  etk::invalid_argument);
}

TEST_CASE("results are bit-identical for any pool and with or without an arena") {
  std::mt19937 rng(3);
  // 300 queries: three query blocks per head, so tasks split heads across workers.
  Case c{5, 300, 700, 16, 24, true, true, true, false, 0.0f};
  Inputs in = make_inputs(c, rng);
  HeadsBuffer one(c.heads, c.n_q, c.dv), many(c.heads, c.n_q, c.dv);
  HeadsBuffer p_one(c.heads, c.n_q, c.n_k), p_many(c.heads, c.n_q, c.n_k);
  HeadsBuffer o_one(c.heads, c.n_q, c.dv), o_many(c.heads, c.n_q, c.dv);
  etk::dense_attention(in.q.cview(), in.k.cview(), in.v.cview(), one.view(), in.params);
  etk::dense_attention_with_probs(in.q.cview(), in.k.cview(), in.v.cview(), o_one.view(),
                                  p_one.view(), in.params);
  for (int threads : {1, 2, 3, 8}) {
    etk::SimpleThreadPool pool(threads);
    etk::ScratchArena arena;
    for (bool with_arena : {false, true}) {
      etk::Context ctx{&pool, with_arena ? &arena : nullptr};
      if (with_arena)
        arena.reserve(etk::dense_attention_scratch_bytes(c.n_q, c.n_k, c.dk, c.dv, true, ctx));
      const void* reserved = arena.data();
      many.fill(-1.0f);
      etk::dense_attention(in.q.cview(), in.k.cview(), in.v.cview(), many.view(), in.params, ctx);
      CHECK(std::memcmp(one.data.data(), many.data.data(), one.data.size() * sizeof(float)) == 0);
      CHECK(arena.data() == reserved);  // planned scratch: the call did not reallocate
      p_many.fill(-1.0f);
      o_many.fill(-1.0f);
      etk::dense_attention_with_probs(in.q.cview(), in.k.cview(), in.v.cview(), o_many.view(),
                                      p_many.view(), in.params, ctx);
      CHECK(std::memcmp(p_one.data.data(), p_many.data.data(), p_one.data.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(o_one.data.data(), o_many.data.data(), o_one.data.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("the probabilities of one head come from a one-head slice of the views") {
  std::mt19937 rng(9);
  Case c{3, 33, 65, 15, 15, true, true, true, true, 0.0f};
  Inputs in = make_inputs(c, rng);
  HeadsBuffer all(c.heads, c.n_q, c.n_k), one(1, c.n_q, c.n_k);
  etk::attention_probs(in.q.cview(), in.k.cview(), all.view(), in.params);
  // Head 2 alone: its own padding row is row 2 of the per-head mask.
  etk::AttentionParams p = in.params;
  p.key_padding = {in.pad.data() + 2 * c.n_k, c.n_k};
  etk::attention_probs(etk::heads_slice(in.q.cview(), 2), etk::heads_slice(in.k.cview(), 2),
                       one.view(), p);
  int differ = 0;
  for (std::ptrdiff_t i = 0; i < c.n_q; ++i)
    for (std::ptrdiff_t j = 0; j < c.n_k; ++j) differ += all.at(2, i, j) != one.at(0, i, j);
  CHECK(differ == 0);
}

TEST_CASE("heads interleaved within rows (a [seq, heads * dim] buffer) work in place") {
  // q, k, v as column blocks of one [seq, 3 * heads * dim] projection output, out as
  // column blocks of [seq, heads * dv]: the same results as head-major copies.
  const std::ptrdiff_t heads = 8, n = 40, d = 15;
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> qkv(static_cast<std::size_t>(n * 3 * heads * d));
  for (auto& x : qkv) x = dist(rng);
  const std::ptrdiff_t ld = 3 * heads * d;
  etk::HeadsView<const float> q(qkv.data(), heads, n, d, ld, d), k(qkv.data() + heads * d, heads, n, d, ld, d),
      v(qkv.data() + 2 * heads * d, heads, n, d, ld, d);
  std::vector<float> out(static_cast<std::size_t>(n * heads * d));
  etk::HeadsView<float> o(out.data(), heads, n, d, heads * d, d);
  HeadsBuffer qc(heads, n, d), kc(heads, n, d), vc(heads, n, d), oc(heads, n, d);
  for (std::ptrdiff_t h = 0; h < heads; ++h) {
    qc.view().head(h) = q.head(h);
    kc.view().head(h) = k.head(h);
    vc.view().head(h) = v.head(h);
  }
  etk::AttentionParams p;
  p.causal = true;
  etk::dense_attention(q, k, v, o, p);
  etk::dense_attention(qc.cview(), kc.cview(), vc.cview(), oc.view(), p);
  int differ = 0;
  for (std::ptrdiff_t h = 0; h < heads; ++h)
    for (std::ptrdiff_t i = 0; i < n; ++i)
      for (std::ptrdiff_t c = 0; c < d; ++c) differ += o.row(h, i)[c] != oc.at(h, i, c);
  CHECK(differ == 0);
  // Interleaved heads that would overlap are still rejected.
  CHECK_THROWS_WITH(etk::dense_attention(q, k, v, etk::HeadsView<float>(out.data(), heads, n, d, heads * d - 1, d), p),
                    Catch::Contains("'out'"));
}

TEST_CASE("fully masked queries get zero outputs and zero probabilities, never NaN") {
  std::mt19937 rng(11);
  // Causal with n_q > n_k: the first n_q - n_k queries see no key.
  for (std::ptrdiff_t n_k : {std::ptrdiff_t(3), std::ptrdiff_t(600)}) {
    const std::ptrdiff_t n_q = n_k + 5;
    HeadsBuffer q(2, n_q, 16), k(2, n_k, 16), v(2, n_k, 8), out(2, n_q, 8), probs(2, n_q, n_k);
    q.fill_normal(rng, 1.0f);
    k.fill_normal(rng, 1.0f);
    v.fill_normal(rng, 1.0f);
    // Head 1's padding masks every key: all of its rows are fully masked.
    std::vector<std::uint8_t> pad(static_cast<std::size_t>(2 * n_k), 0);
    std::fill(pad.begin() + n_k, pad.end(), 1);
    etk::AttentionParams p;
    p.causal = true;
    p.key_padding = {pad.data(), 2 * n_k};
    etk::dense_attention_with_probs(q.cview(), k.cview(), v.cview(), out.view(), probs.view(), p);
    HeadsBuffer out_fast(2, n_q, 8);
    etk::dense_attention(q.cview(), k.cview(), v.cview(), out_fast.view(), p);
    for (std::ptrdiff_t h = 0; h < 2; ++h)
      for (std::ptrdiff_t i = 0; i < n_q; ++i) {
        const bool blind = h == 1 || i < n_q - n_k;
        double row_sum = 0;
        for (std::ptrdiff_t j = 0; j < n_k; ++j) row_sum += probs.at(h, i, j);
        if (blind) {
          CHECK(row_sum == 0.0);
          for (std::ptrdiff_t d = 0; d < 8; ++d) {
            CHECK(out.at(h, i, d) == 0.0f);
            CHECK(out_fast.at(h, i, d) == 0.0f);
          }
        } else {
          CHECK(row_sum == Approx(1.0).epsilon(1e-4));
          // Causal: query i sees keys j <= i - (n_q - n_k), exactly zero beyond.
          for (std::ptrdiff_t j = i - (n_q - n_k) + 1; j < n_k; ++j) CHECK(probs.at(h, i, j) == 0.0f);
        }
      }
  }
}

TEST_CASE("softmax_row matches a double softmax, zeroes -inf entries and all -inf rows") {
  std::mt19937 rng(5);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (std::ptrdiff_t n : {1, 2, 7, 15, 16, 17, 31, 33, 63, 65, 1000}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    std::normal_distribution<float> dist(0.0f, 4.0f);
    for (auto& e : x) e = dist(rng);
    if (n > 2) x[1] = neg_inf;
    std::vector<float> y = x;
    etk::softmax_row(y.data(), n);
    double mx = -INFINITY, sum = 0;
    for (float e : x) mx = std::max(mx, double(e));
    for (float e : x) sum += std::exp(double(e) - mx);
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const double p = std::exp(double(x[j]) - mx) / sum;
      // Logit error: rounding of (x - max) * log2(e) in fp32, u * |x - max| * 2 (|x - max|
      // < 40 here); then the bound of etk_test::prob_error_bound with that delta.
      const double delta = 2.0 * etk_test::kUnitRoundoff * (double(x[j]) == -INFINITY ? 0.0 : (mx - x[j]) + 1.0);
      CHECK(std::fabs(y[j] - p) <= etk_test::prob_error_bound(delta, p, n));
    }
    if (n > 2) CHECK(y[1] == 0.0f);
    std::vector<float> masked(static_cast<std::size_t>(n), neg_inf);
    etk::softmax_row(masked.data(), n);
    for (float e : masked) CHECK(e == 0.0f);
  }
}

TEST_CASE("bad arguments are rejected with etk::invalid_argument naming the argument") {
  HeadsBuffer q(2, 5, 8), k(2, 6, 8), v(2, 6, 4), out(2, 5, 4), probs(2, 5, 6);
  std::mt19937 rng(1);
  q.fill_normal(rng, 1.0f);
  k.fill_normal(rng, 1.0f);
  v.fill_normal(rng, 1.0f);
  const auto qv = q.cview(), kv = k.cview(), vv = v.cview();
  auto with = [](etk::HeadsView<const float> x, std::ptrdiff_t heads, std::ptrdiff_t seq,
                 std::ptrdiff_t dim) {
    return etk::HeadsView<const float>(x.data, heads, seq, dim, x.row_stride, x.head_stride);
  };
  auto attend = [&](etk::HeadsView<const float> a, etk::HeadsView<const float> b,
                    etk::HeadsView<const float> c, etk::HeadsView<float> o,
                    const etk::AttentionParams& p) { etk::dense_attention(a, b, c, o, p); };
  auto expect = [&](const std::string& name, auto&& call) {
    INFO("argument " << name);
    CHECK_THROWS_AS(call(), etk::invalid_argument);
    CHECK_THROWS_WITH(call(), Catch::Contains("'" + name + "'"));
  };
  const etk::AttentionParams p;
  // Mismatched head counts and dims.
  expect("k", [&] { attend(qv, with(kv, 1, 6, 8), vv, out.view(), p); });
  expect("v", [&] { attend(qv, kv, with(vv, 1, 6, 4), out.view(), p); });
  expect("k", [&] { attend(qv, with(kv, 2, 6, 7), vv, out.view(), p); });
  expect("v", [&] { attend(qv, kv, with(vv, 2, 5, 4), out.view(), p); });
  expect("out", [&] { attend(qv, kv, vv, etk::HeadsView<float>(out.data.data(), 2, 5, 3), p); });
  expect("out", [&] { attend(qv, kv, vv, etk::HeadsView<float>(out.data.data(), 1, 5, 4), p); });
  expect("probs", [&] {
    etk::attention_probs(qv, kv, etk::HeadsView<float>(probs.data.data(), 2, 5, 5), p);
  });
  expect("probs", [&] {
    etk::dense_attention_with_probs(qv, kv, vv, out.view(),
                                    etk::HeadsView<float>(probs.data.data(), 2, 4, 6), p);
  });
  // Zero heads and empty sequences.
  expect("q", [&] { attend(with(qv, 0, 5, 8), with(kv, 0, 6, 8), with(vv, 0, 6, 4), out.view(), p); });
  expect("q", [&] { attend(with(qv, 2, 0, 8), kv, vv, out.view(), p); });
  expect("k", [&] { attend(qv, with(kv, 2, 0, 8), with(vv, 2, 0, 4), out.view(), p); });
  expect("q", [&] { attend(with(qv, 2, 5, 0), with(kv, 2, 6, 0), vv, out.view(), p); });
  // Mask of the wrong size (n_k and heads * n_k are the accepted sizes).
  std::vector<std::uint8_t> pad(13, 0);
  for (std::ptrdiff_t size : {5, 7, 13, 0}) {
    etk::AttentionParams bad;
    bad.key_padding = {pad.data(), size};
    expect("params.key_padding", [&] { attend(qv, kv, vv, out.view(), bad); });
  }
  {
    etk::AttentionParams ok;
    ok.key_padding = {pad.data(), 12};
    CHECK_NOTHROW(attend(qv, kv, vv, out.view(), ok));
    ok.key_padding = {pad.data(), 6};
    CHECK_NOTHROW(attend(qv, kv, vv, out.view(), ok));
  }
  // Parameters.
  for (float s : {-1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    etk::AttentionParams bad;
    bad.scale = s;
    expect("params.scale", [&] { attend(qv, kv, vv, out.view(), bad); });
  }
  // NaN and Inf in q, k, v (in the fast, the probability and the reference entry points).
  for (const char* name : {"q", "k", "v"}) {
    HeadsBuffer& b = name[0] == 'q' ? q : (name[0] == 'k' ? k : v);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      const float keep = b.at(1, 2, 3);
      b.at(1, 2, 3) = bad;
      expect(name, [&] { attend(qv, kv, vv, out.view(), p); });
      expect(name, [&] {
        etk::dense_attention_with_probs(qv, kv, vv, out.view(), probs.view(), p);
      });
      expect(name, [&] { etk::reference::dense_attention(qv, kv, vv, out.view(), p); });
      b.at(1, 2, 3) = keep;
    }
  }
  CHECK_NOTHROW(attend(qv, kv, vv, out.view(), p));
}

namespace {
// Resident set size now and its peak since the last reset, in KiB (Linux /proc).
long status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  return -1;
}
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return bool(f);
}
}  // namespace

TEST_CASE("the fast kernel's memory does not grow with n_q * n_k") {
  // The workspace is a function of the block sizes, dk, dv (and n_k for a padding mask).
  const auto ws = [](std::ptrdiff_t n, bool pad) {
    return etk::dense_attention_workspace_floats(n, n, 64, 64, pad);
  };
  CHECK(ws(4096, false) == ws(1024, false));
  CHECK(ws(4096, false) == ws(65536, false));
  CHECK(ws(8192, true) - ws(4096, true) == 4096);  // one bias float per key
  CHECK(ws(4096, true) < 4096 * 4096 / 32);

  // Measured: peak resident memory while running seq 4096, 1 head, dim 64. The score
  // matrix alone would be 4096^2 floats = 64 MiB; inputs and output are 4 MiB.
  const std::ptrdiff_t n = 4096;
  HeadsBuffer q(1, n, 64), k(1, n, 64), v(1, n, 64), out(1, n, 64);
  std::mt19937 rng(2);
  q.fill_normal(rng, 1.0f);
  k.fill_normal(rng, 1.0f);
  v.fill_normal(rng, 1.0f);
  out.fill(0.0f);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed blocks in quarantine, so the peak RSS counts every block
  // Eigen's GEMMs ever freed: the measurement says nothing about the kernel there.
  WARN("AddressSanitizer build: only the workspace size was checked");
  return;
#endif
  if (!reset_peak_rss() || status_kib("VmHWM:") < 0) {
    WARN("cannot reset the peak RSS (/proc/self/clear_refs); only the workspace size was checked");
    return;
  }
  const long before = status_kib("VmRSS:");
  etk::dense_attention(q.cview(), k.cview(), v.cview(), out.view());
  const long growth_kib = status_kib("VmHWM:") - before;
  INFO("peak RSS growth " << growth_kib << " KiB");
  CHECK(growth_kib < 8 * 1024);  // < 8 MiB, against 64 MiB for the scores
  // The measurement sees an n^2 buffer: the materialising entry point grows by >= 64 MiB.
  // (Allocated untouched, so its pages become resident only when written.)
  std::unique_ptr<float[]> probs(new float[static_cast<std::size_t>(n * n)]);
  reset_peak_rss();
  const long before2 = status_kib("VmRSS:");
  etk::attention_probs(q.cview(), k.cview(), etk::HeadsView<float>(probs.get(), 1, n, n));
  CHECK(status_kib("VmHWM:") - before2 >= 60 * 1024);
}

TEST_CASE("an output that shares memory with an input or the other output is rejected") {
  std::mt19937 rng(31);
  const std::ptrdiff_t h = 2, n = 7, d = 7;  // d == n: probs and v have the same shape
  HeadsBuffer q(h, n, d), k(h, n, d), v(h, n, d);
  q.fill_normal(rng, 1.0f);
  k.fill_normal(rng, 1.0f);
  v.fill_normal(rng, 1.0f);
  using Dense = void (*)(etk::HeadsView<const float>, etk::HeadsView<const float>, etk::HeadsView<const float>,
                         etk::HeadsView<float>, const etk::AttentionParams&);
  for (Dense fn : {Dense(&fast_dense), Dense(&reference_dense)}) {
    CHECK_THROWS_WITH(fn(q.cview(), k.cview(), v.cview(), k.view(), {}), Catch::Contains("'out' overlaps argument 'k'"));
    CHECK_THROWS_WITH(fn(q.cview(), k.cview(), v.cview(), v.view(), {}), Catch::Contains("'out' overlaps argument 'v'"));
    CHECK_THROWS_WITH(fn(q.cview(), k.cview(), v.cview(), q.view(), {}), Catch::Contains("'out' overlaps argument 'q'"));
  }
  CHECK_THROWS_WITH(etk::attention_probs(q.cview(), k.cview(), k.view(), {}),
                    Catch::Contains("'probs' overlaps argument 'k'"));
  HeadsBuffer out(h, n, d);
  CHECK_THROWS_WITH(etk::dense_attention_with_probs(q.cview(), k.cview(), v.cview(), out.view(), v.view(), {}),
                    Catch::Contains("'probs' overlaps argument 'v'"));
  HeadsBuffer both(1, 1, h * n * n + h * n * d);
  const etk::HeadsView<float> p_view(both.data.data(), h, n, n);
  const etk::HeadsView<float> o_view(both.data.data() + h * n * n - 1, h, n, d);
  CHECK_THROWS_WITH(etk::dense_attention_with_probs(q.cview(), k.cview(), v.cview(), o_view, p_view, {}),
                    Catch::Contains("'out' overlaps argument 'probs'"));
  // Interleaved in one [seq, 4 * heads * dim] buffer: out in its own column block is
  // accepted (the exact sweep finds no shared element), out over k's block is not.
  std::vector<float> qkvo(static_cast<std::size_t>(n * 4 * h * d));
  for (auto& x : qkvo) x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
  const std::ptrdiff_t ld = 4 * h * d;
  const etk::HeadsView<const float> qi(qkvo.data(), h, n, d, ld, d), ki(qkvo.data() + h * d, h, n, d, ld, d),
      vi(qkvo.data() + 2 * h * d, h, n, d, ld, d);
  CHECK_NOTHROW(etk::dense_attention(qi, ki, vi, etk::HeadsView<float>(qkvo.data() + 3 * h * d, h, n, d, ld, d)));
  CHECK_THROWS_WITH(etk::dense_attention(qi, ki, vi, etk::HeadsView<float>(qkvo.data() + h * d + 1, h, n, d, ld, d)),
                    Catch::Contains("'out' overlaps argument 'k'"));
}

TEST_CASE("logits beyond float range are rejected; large accepted ones give a convex combination of v") {
  std::mt19937 rng(32);
  const std::ptrdiff_t h = 2, n = 33, d = 16;
  using Dense = void (*)(etk::HeadsView<const float>, etk::HeadsView<const float>, etk::HeadsView<const float>,
                         etk::HeadsView<float>, const etk::AttentionParams&);
  for (Dense fn : {Dense(&fast_dense), Dense(&reference_dense)}) {
    HeadsBuffer q(h, n, d), k(h, n, d), v(h, n, 3), out(h, n, 3);
    v.fill_normal(rng, 1.0f);
    q.fill_normal(rng, 1e20f);
    k.fill_normal(rng, 1e20f);
    CHECK_THROWS_WITH(fn(q.cview(), k.cview(), v.cview(), out.view(), {}), Catch::Contains("logits"));
    q.fill_normal(rng, 1.0f);
    k.fill_normal(rng, 1.0f);
    etk::AttentionParams huge;
    huge.scale = std::numeric_limits<float>::max();
    CHECK_THROWS_WITH(fn(q.cview(), k.cview(), v.cview(), out.view(), huge), Catch::Contains("'params.scale'"));
    // Logits up to ~1e36: the kernel's online softmax never forms inf - inf.
    q.fill_normal(rng, 1e17f);
    k.fill_normal(rng, 1e17f);
    for (bool causal : {false, true}) {
      etk::AttentionParams p;
      p.causal = causal;
      REQUIRE_NOTHROW(fn(q.cview(), k.cview(), v.cview(), out.view(), p));
      for (std::ptrdiff_t hh = 0; hh < h; ++hh)
        for (std::ptrdiff_t i = 0; i < n; ++i)
          for (std::ptrdiff_t c = 0; c < 3; ++c) {
            double lo = 1e300, hi = -1e300;
            for (std::ptrdiff_t j = 0; j < n; ++j) lo = std::min(lo, double(v.at(hh, j, c))), hi = std::max(hi, double(v.at(hh, j, c)));
            CHECK(std::isfinite(out.at(hh, i, c)));
            CHECK(out.at(hh, i, c) >= lo - 1e-5);
            CHECK(out.at(hh, i, c) <= hi + 1e-5);
          }
    }
  }
}
