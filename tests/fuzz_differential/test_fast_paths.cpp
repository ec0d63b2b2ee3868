// Differential fuzz of the fast paths against their reference twins: random shapes,
// strides, zero points and values, drawn more often at the edges the API still accepts
// (codes at the ends of their range, accumulators at the int32 bound the depth check
// allows, biases that fill the rest of it, multipliers up to 2^31 - 1, every shift).
// Integer kernels must agree bit for bit; the float quantizer too (its contract is bit
// exactness); dense attention within the bound derived in tests/support/attention_util.hpp.
// A fixed seed per case keeps failures reproducible; the whole file runs in seconds.
// etk:isa-variants etk:amx-path (its dispatch variant also runs with ETK_ISA=amx: the int8 GEMM's tiles)
#include <catch2/catch.hpp>
#include <etk/attention/dense.hpp>
#include <etk/attention/reference/dense.hpp>
#include <etk/quant/int8_gemm.hpp>
#include <etk/quant/reference/int8_gemm.hpp>
#include <etk/quant/reference/uniform.hpp>
#include <etk/quant/uniform.hpp>
#include <etk/core/bit_packing.hpp>
#include <etk/core/reference/bit_packing.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "support/attention_util.hpp"

namespace {

using Rng = std::mt19937_64;

std::int64_t uniform(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

// A size in [1, hi], often 1, a SIMD width +-1, or hi itself.
std::ptrdiff_t awkward(Rng& rng, std::ptrdiff_t hi) {
  static const std::ptrdiff_t edges[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  const auto pick = uniform(rng, 0, 3);
  if (pick == 0) return std::min<std::ptrdiff_t>(hi, edges[uniform(rng, 0, 15)]);
  if (pick == 1) return hi;
  return uniform(rng, 1, hi);
}

// Codes of type T: uniform, or (one time in three) only the two ends of the range.
template <typename T>
std::vector<T> codes(Rng& rng, std::size_t n) {
  const std::int64_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  const bool ends = uniform(rng, 0, 2) == 0;
  std::vector<T> out(n);
  for (auto& c : out) c = static_cast<T>(ends ? (uniform(rng, 0, 1) ? hi : lo) : uniform(rng, lo, hi));
  return out;
}

template <typename TA>
void gemm_case(Rng& rng) {
  const std::ptrdiff_t m = awkward(rng, 40), n = awkward(rng, 70);
  // Depth: small, or (one time in four) near the deepest the overflow check allows.
  const bool deep = uniform(rng, 0, 3) == 0;
  const std::ptrdiff_t lda_pad = uniform(rng, 0, 9), ldo_pad = uniform(rng, 0, 9);
  const std::int32_t a_zp = static_cast<std::int32_t>(
      uniform(rng, 0, 2) == 0 ? (uniform(rng, 0, 1) ? std::numeric_limits<TA>::min() : std::numeric_limits<TA>::max())
                              : uniform(rng, std::numeric_limits<TA>::min(), std::numeric_limits<TA>::max()));
  std::vector<std::int32_t> w_zp(uniform(rng, 0, 1) ? static_cast<std::size_t>(n) : 1u);
  const bool zero_wzp = uniform(rng, 0, 1) == 0;
  for (auto& z : w_zp) z = zero_wzp ? 0 : static_cast<std::int32_t>(uniform(rng, -128, 127));
  // max |a - a_zp| * max |w - w_zp| over the accepted ranges: the depth check's terms.
  const std::int64_t ma = std::max<std::int64_t>(a_zp - std::numeric_limits<TA>::min(), std::numeric_limits<TA>::max() - a_zp);
  std::int64_t mw = 0;
  for (auto z : w_zp) mw = std::max<std::int64_t>(mw, std::max(128 + z, 127 - z));
  const std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();
  const std::ptrdiff_t k_max = static_cast<std::ptrdiff_t>(int32_max / (ma * mw));
  const std::ptrdiff_t k = deep ? k_max - uniform(rng, 0, 3) : awkward(rng, std::min<std::ptrdiff_t>(k_max, 300));
  const std::ptrdiff_t mm = deep ? std::min<std::ptrdiff_t>(m, 3) : m, nn = deep ? std::min<std::ptrdiff_t>(n, 17) : n;
  const std::ptrdiff_t lda = k + lda_pad, ldo = nn + ldo_pad;
  const std::vector<TA> a = codes<TA>(rng, static_cast<std::size_t>(mm * lda));
  const std::vector<std::int8_t> w = codes<std::int8_t>(rng, static_cast<std::size_t>(nn * k));
  if (w_zp.size() > 1) w_zp.resize(static_cast<std::size_t>(nn));
  // Biases up to what the bound leaves: |bias| <= 2^31 - 1 - K * ma * mw.
  std::vector<std::int32_t> bias;
  const std::int64_t room = int32_max - static_cast<std::int64_t>(k) * ma * mw;
  if (uniform(rng, 0, 1))
    for (std::ptrdiff_t j = 0; j < nn; ++j)
      bias.push_back(static_cast<std::int32_t>(uniform(rng, 0, 1) ? (uniform(rng, 0, 1) ? room : -room) : uniform(rng, -room, room)));
  INFO("M " << mm << " N " << nn << " K " << k << " a_zp " << a_zp << " w_zp " << w_zp.size() << " bias "
            << bias.size() << " signed " << std::is_signed<TA>::value);
  const etk::PackedWeightsS8 packed(etk::matrix_view(w.data(), nn, k, k), w_zp);
  const auto av = etk::matrix_view(a.data(), mm, k, lda);
  const std::int32_t* bp = bias.empty() ? nullptr : bias.data();

  std::vector<std::int32_t> s32(static_cast<std::size_t>(mm * ldo), -7), s32_ref(s32.size(), -7);
  etk::int8_gemm_s32<TA>(av, a_zp, packed, bias, etk::matrix_view(s32.data(), mm, nn, ldo));
  etk::reference::int8_gemm_s32(a.data(), mm, k, lda, a_zp, w.data(), nn, k, w_zp, bp, s32_ref.data(), ldo);
  REQUIRE(s32 == s32_ref);  // padding between rows untouched in both

  std::vector<float> scale(uniform(rng, 0, 1) ? static_cast<std::size_t>(nn) : 1u);
  for (auto& s : scale) s = std::ldexp(static_cast<float>(uniform(rng, 1, 1 << 20)), static_cast<int>(uniform(rng, -60, 10)));
  std::vector<float> f32(s32.size(), -7.0f), f32_ref(s32.size(), -7.0f);
  etk::int8_gemm_f32<TA>(av, a_zp, packed, bias, scale, etk::matrix_view(f32.data(), mm, nn, ldo));
  etk::reference::int8_gemm_f32(a.data(), mm, k, lda, a_zp, w.data(), nn, k, w_zp, bp, scale, f32_ref.data(), ldo);
  REQUIRE(f32 == f32_ref);

  // Requantization: Q0.31 multipliers in [2^30, 2^31 - 1] (the top often), signed shifts
  // -31..31 (left shifts for multipliers >= 0.5, the ends often), zero points anywhere in
  // the output range and often at its ends.
  for (bool is_signed : {false, true}) {
    etk::Requantization rq;
    const std::size_t ch = uniform(rng, 0, 1) ? static_cast<std::size_t>(nn) : 1u;
    rq.multiplier.assign(ch, 0);
    rq.shift.assign(ch, 0);
    for (std::size_t j = 0; j < ch; ++j) {
      rq.multiplier[j] = static_cast<std::int32_t>(uniform(rng, 0, 2) == 0 ? int32_max : uniform(rng, std::int64_t(1) << 30, int32_max));
      const auto pick = uniform(rng, 0, 3);
      rq.shift[j] = static_cast<std::int32_t>(pick == 0 ? (uniform(rng, 0, 1) ? -31 : 31) : pick == 1 ? uniform(rng, -31, 0)
                                                                                                     : uniform(rng, -31, 31));
    }
    rq.qmin = is_signed ? -128 : 0;
    rq.qmax = is_signed ? 127 : 255;
    const auto zpick = uniform(rng, 0, 2);
    rq.zero_point = static_cast<std::int32_t>(zpick == 0 ? rq.qmin : zpick == 1 ? rq.qmax : uniform(rng, rq.qmin, rq.qmax));
    std::vector<std::uint8_t> u8(s32.size(), 7), u8_ref(s32.size(), 7);
    std::vector<std::int8_t> i8(s32.size(), 7), i8_ref(s32.size(), 7);
    if (is_signed) {
      etk::int8_gemm<TA, std::int8_t>(av, a_zp, packed, bias, rq, etk::matrix_view(i8.data(), mm, nn, ldo));
      etk::reference::int8_gemm_requantized(a.data(), mm, k, lda, a_zp, w.data(), nn, k, w_zp, bp, rq, i8_ref.data(), ldo);
      REQUIRE(i8 == i8_ref);
    } else {
      etk::int8_gemm<TA, std::uint8_t>(av, a_zp, packed, bias, rq, etk::matrix_view(u8.data(), mm, nn, ldo));
      etk::reference::int8_gemm_requantized(a.data(), mm, k, lda, a_zp, w.data(), nn, k, w_zp, bp, rq, u8_ref.data(), ldo);
      REQUIRE(u8 == u8_ref);
    }
  }
}

// A float drawn from every region the quantizer meets: around the grid's ties, at the
// clamp edges, huge, tiny, infinite.
float hostile_float(Rng& rng, float scale) {
  switch (uniform(rng, 0, 5)) {
    case 0: return static_cast<float>(uniform(rng, -300, 300)) * 0.5f * scale;  // ties
    case 1: return std::nextafter(static_cast<float>(uniform(rng, -300, 300)) * 0.5f * scale,
                                  uniform(rng, 0, 1) ? 1e30f : -1e30f);
    case 2: return (uniform(rng, 0, 1) ? 1.0f : -1.0f) * std::numeric_limits<float>::max() / static_cast<float>(uniform(rng, 1, 4));
    case 3: return (uniform(rng, 0, 1) ? 1.0f : -1.0f) * std::numeric_limits<float>::infinity();
    case 4: return std::numeric_limits<float>::denorm_min() * static_cast<float>(uniform(rng, -1000, 1000));
    default: return std::normal_distribution<float>(0.0f, 100.0f * scale)(rng);
  }
}

template <typename T>
void quantize_case(Rng& rng) {
  const std::ptrdiff_t rows = awkward(rng, 20), cols = awkward(rng, 140);
  const std::ptrdiff_t xs = cols + uniform(rng, 0, 5), qs = cols + uniform(rng, 0, 5);
  etk::QuantParams p;
  const int widths[] = {2, 3, 4, 5, 6, 7, 8, 16};
  do {
    p.bits = widths[uniform(rng, 0, 7)];
  } while (sizeof(T) == 1 && p.bits == 16);
  p.is_signed = std::is_signed<T>::value;
  p.narrow_range = p.is_signed && uniform(rng, 0, 1);
  p.axis = static_cast<int>(uniform(rng, -1, 1));
  const std::ptrdiff_t ch = etk::QuantParams::channels_for(p.axis, rows, cols);
  p.scale.assign(static_cast<std::size_t>(ch), 0.0f);
  p.zero_point.assign(static_cast<std::size_t>(ch), 0);
  for (std::ptrdiff_t c = 0; c < ch; ++c) {
    p.scale[static_cast<std::size_t>(c)] = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng),
                                                      static_cast<int>(uniform(rng, -120, 120)));
    p.zero_point[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(uniform(rng, p.qmin(), p.qmax()));
  }
  std::vector<float> x(static_cast<std::size_t>(rows * xs));
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      const std::size_t sc = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
      x[static_cast<std::size_t>(r * xs + c)] = hostile_float(rng, p.scale[sc]);
    }
  INFO("rows " << rows << " cols " << cols << " bits " << p.bits << " axis " << p.axis);
  std::vector<T> q(static_cast<std::size_t>(rows * qs), T(3)), q_ref(q.size(), T(3));
  etk::quantize<T>(etk::matrix_view(static_cast<const float*>(x.data()), rows, cols, xs), p,
                   etk::matrix_view(q.data(), rows, cols, qs));
  etk::reference::quantize<T>(x.data(), rows, cols, xs, p, q_ref.data(), qs);
  REQUIRE(q == q_ref);
  std::vector<float> d(q.size(), 5.0f), d_ref(q.size(), 5.0f);
  etk::dequantize<T>(etk::matrix_view(static_cast<const T*>(q.data()), rows, cols, qs), p,
                     etk::matrix_view(d.data(), rows, cols, qs));
  etk::reference::dequantize<T>(q.data(), rows, cols, qs, p, d_ref.data(), qs);
  REQUIRE(d == d_ref);
}

}  // namespace

TEST_CASE("differential fuzz: int8 GEMM (s32, f32, requantized) equals the reference bit for bit") {
  Rng rng(0xE7C0001);
  for (int trial = 0; trial < 80; ++trial) {
    gemm_case<std::uint8_t>(rng);
    gemm_case<std::int8_t>(rng);
  }
}

TEST_CASE("differential fuzz: quantize and dequantize equal the reference bit for bit") {
  Rng rng(0xE7C0002);
  for (int trial = 0; trial < 80; ++trial) {
    quantize_case<std::int8_t>(rng);
    quantize_case<std::uint8_t>(rng);
    quantize_case<std::int16_t>(rng);
    quantize_case<std::uint16_t>(rng);
  }
}

TEST_CASE("differential fuzz: bit packing equals the reference bit for bit") {
  Rng rng(0xE7C0003);
  for (int trial = 0; trial < 400; ++trial) {
    const int bits = static_cast<int>(uniform(rng, 1, 8));
    const auto n = static_cast<std::size_t>(awkward(rng, 300));
    std::vector<std::uint8_t> c(n);
    for (auto& v : c) v = static_cast<std::uint8_t>(uniform(rng, 0, (1 << bits) - 1));
    std::vector<std::uint8_t> fast(etk::packed_bytes(n, bits) + 3, 0xAB), ref(fast);
    etk::pack_bits(c.data(), n, bits, fast.data());
    etk::reference::pack_bits(c.data(), n, bits, ref.data());
    INFO("bits " << bits << " n " << n);
    REQUIRE(fast == ref);
    std::vector<std::uint8_t> back(n + 3, 0xCD), back_ref(back);
    etk::unpack_bits(fast.data(), n, bits, back.data());
    etk::reference::unpack_bits(fast.data(), n, bits, back_ref.data());
    REQUIRE(back == back_ref);
    REQUIRE(std::equal(c.begin(), c.end(), back.begin()));
  }
}

TEST_CASE("differential fuzz: dense attention within the derived bound of the double reference") {
  Rng rng(0xE7C0004);
  std::mt19937 fill(4);
  for (int trial = 0; trial < 25; ++trial) {
    const std::ptrdiff_t heads = awkward(rng, 3), nq = awkward(rng, 40), nk = awkward(rng, 70);
    const std::ptrdiff_t dk = awkward(rng, 33), dv = awkward(rng, 20);
    etk_test::HeadsBuffer q(heads, nq, dk, uniform(rng, 0, 3), uniform(rng, 0, 5)),
        k(heads, nk, dk, uniform(rng, 0, 3), uniform(rng, 0, 5)), v(heads, nk, dv, uniform(rng, 0, 3)),
        out(heads, nq, dv, uniform(rng, 0, 3)), ref(heads, nq, dv);
    // Magnitudes from tiny to large logits (up to ~1e3 per logit).
    const float sigma = std::ldexp(1.0f, static_cast<int>(uniform(rng, -20, 3)));
    q.fill_normal(fill, sigma);
    k.fill_normal(fill, sigma);
    v.fill_normal(fill, 1.0f);
    etk::AttentionParams p;
    p.causal = uniform(rng, 0, 1);
    std::vector<std::uint8_t> pad(static_cast<std::size_t>(nk));
    if (uniform(rng, 0, 1)) {
      for (auto& b : pad) b = uniform(rng, 0, 3) == 0;
      p.key_padding = {pad.data(), nk};
    }
    INFO("heads " << heads << " nq " << nq << " nk " << nk << " dk " << dk << " dv " << dv << " sigma " << sigma);
    etk::dense_attention(q.cview(), k.cview(), v.cview(), out.view(), p);
    etk::reference::dense_attention(q.cview(), k.cview(), v.cview(), ref.view(), p);
    const double scale = 1.0 / std::sqrt(double(dk));
    double vmax = 0;
    for (std::ptrdiff_t h = 0; h < heads; ++h)
      for (std::ptrdiff_t j = 0; j < nk; ++j)
        for (std::ptrdiff_t c = 0; c < dv; ++c) vmax = std::max(vmax, std::fabs(double(v.at(h, j, c))));
    const std::ptrdiff_t bk = etk::detail::dense_blocks(etk::detail::attention_shape(nq, nk, dk, dv)).keys;
    const std::ptrdiff_t blocks = (nk + bk - 1) / bk;
    for (std::ptrdiff_t h = 0; h < heads; ++h)
      for (std::ptrdiff_t i = 0; i < nq; ++i) {
        const double bound = etk_test::output_error_bound(etk_test::logit_error_bound(q, k, scale, h, i), vmax, nk, blocks);
        for (std::ptrdiff_t c = 0; c < dv; ++c) {
          REQUIRE(std::isfinite(out.at(h, i, c)));
          REQUIRE(std::fabs(double(out.at(h, i, c)) - double(ref.at(h, i, c))) <= bound + 1e-30);
        }
      }
  }
}
