// etk:isa-variants etk:threads etk:amx-path
// Tests of etk/quant/int8_gemm.hpp and requantize.hpp: every output form (int32, float,
// requantized u8/s8) matches the int64 reference bit for bit on awkward shapes (integer
// results: no tolerance; the float output is one int->float conversion and one multiply
// in both, so identical bits too) on every dispatch path (so the paths agree bit for bit
// among themselves), for any thread count and with or without a caller's arena; the
// accumulator bound is enforced exactly at its limit, and bad input throws.
#include <catch2/catch.hpp>
#include <etk/quant/int8_gemm.hpp>
#include <etk/quant/reference/int8_gemm.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <random>

#include "support/paths.hpp"
#include "support/quant_util.hpp"

using quant_test::cview;
using quant_test::view;

namespace {

template <typename T>
etk::RowMatrix<T> random_codes(std::ptrdiff_t rows, std::ptrdiff_t cols, std::mt19937& gen) {
  std::uniform_int_distribution<int> d(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
  etk::RowMatrix<T> m(rows, cols);
  for (std::ptrdiff_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(d(gen));
  return m;
}

etk::Requantization random_requant(std::ptrdiff_t n, bool per_channel, bool u8_out, std::mt19937& gen) {
  std::uniform_real_distribution<double> lm(-20.0, 8.0);  // left shifts too
  etk::Requantization r;
  const std::ptrdiff_t c = per_channel ? n : 1;
  r.multiplier.resize(static_cast<std::size_t>(c));
  r.shift.resize(static_cast<std::size_t>(c));
  for (std::ptrdiff_t j = 0; j < c; ++j)
    etk::Requantization::quantize_multiplier(std::exp2(lm(gen)), r.multiplier[static_cast<std::size_t>(j)],
                                             r.shift[static_cast<std::size_t>(j)]);
  r.qmin = u8_out ? 0 : -128;
  r.qmax = u8_out ? 255 : 127;
  r.zero_point = u8_out ? 77 : -5;
  return r;
}

template <typename TA>
void compare_all(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, int wzp_mode, bool with_bias,
                 std::mt19937& gen) {
  // Strided activations: 5 padding columns that must never be read.
  etk::RowMatrix<TA> abuf = random_codes<TA>(m, k + 5, gen);
  const auto a = etk::matrix_view(static_cast<const TA*>(abuf.data()), m, k, k + 5);
  const etk::RowMatrix<std::int8_t> w = random_codes<std::int8_t>(n, k, gen);
  std::uniform_int_distribution<int> zd(std::numeric_limits<TA>::min(), std::numeric_limits<TA>::max());
  const std::int32_t a_zp = zd(gen);
  std::vector<std::int32_t> w_zp{0};
  std::uniform_int_distribution<int> wz(-20, 20);
  if (wzp_mode == 1) w_zp = {wz(gen)};
  if (wzp_mode == 2) {
    w_zp.resize(static_cast<std::size_t>(n));
    for (auto& z : w_zp) z = wz(gen);
  }
  std::vector<std::int32_t> bias;
  std::uniform_int_distribution<int> bd(-100000, 100000);
  if (with_bias)
    for (std::ptrdiff_t j = 0; j < n; ++j) bias.push_back(bd(gen));
  const etk::PackedWeightsS8 packed(cview(w), w_zp);
  INFO("M " << m << " N " << n << " K " << k << " signed " << std::is_signed<TA>::value << " wzp "
            << wzp_mode << " bias " << with_bias);

  etk::RowMatrix<std::int32_t> s32(m, n), s32_ref(m, n);
  etk::int8_gemm_s32<TA>(a, a_zp, packed, bias, view(s32));
  etk::reference::int8_gemm_s32(a.data(), m, k, k + 5, a_zp, w.data(), n, k, w_zp,
                                bias.empty() ? nullptr : bias.data(), s32_ref.data(), n);
  REQUIRE((s32.array() == s32_ref.array()).all());

  std::vector<float> scale{0.0123f};
  if (n % 2) {
    scale.clear();
    for (std::ptrdiff_t j = 0; j < n; ++j) scale.push_back(0.001f * static_cast<float>(j + 1));
  }
  etk::RowMatrixXf f32(m, n), f32_ref(m, n);
  etk::int8_gemm_f32<TA>(a, a_zp, packed, bias, scale, view(f32));
  etk::reference::int8_gemm_f32(a.data(), m, k, k + 5, a_zp, w.data(), n, k, w_zp,
                                bias.empty() ? nullptr : bias.data(), scale, f32_ref.data(), n);
  REQUIRE((f32.array() == f32_ref.array()).all());

  for (bool per_channel : {false, true}) {
    const etk::Requantization rq_u = random_requant(n, per_channel, true, gen);
    etk::RowMatrix<std::uint8_t> u8(m, n), u8_ref(m, n);
    etk::int8_gemm<TA, std::uint8_t>(a, a_zp, packed, bias, rq_u, view(u8));
    etk::reference::int8_gemm_requantized(a.data(), m, k, k + 5, a_zp, w.data(), n, k, w_zp,
                                          bias.empty() ? nullptr : bias.data(), rq_u, u8_ref.data(), n);
    REQUIRE((u8.array() == u8_ref.array()).all());
    const etk::Requantization rq_s = random_requant(n, per_channel, false, gen);
    etk::RowMatrix<std::int8_t> s8(m, n), s8_ref(m, n);
    etk::int8_gemm<TA, std::int8_t>(a, a_zp, packed, bias, rq_s, view(s8));
    etk::reference::int8_gemm_requantized(a.data(), m, k, k + 5, a_zp, w.data(), n, k, w_zp,
                                          bias.empty() ? nullptr : bias.data(), rq_s, s8_ref.data(), n);
    REQUIRE((s8.array() == s8_ref.array()).all());
  }
}

}  // namespace

TEST_CASE("int8 GEMM matches the reference bit for bit on awkward shapes") {
  paths::for_each([](etk::Isa) {
  std::mt19937 gen(2024);
  for (std::ptrdiff_t m : {1, 2, 5, 6, 7, 13, 17, 31, 33})
    for (std::ptrdiff_t n : {1, 3, 16, 17, 63, 64, 65, 129})
      for (std::ptrdiff_t k : {1, 3, 4, 5, 17, 64, 65, 257}) {
        const int mode = static_cast<int>((m + n + k) % 3);
        compare_all<std::uint8_t>(m, n, k, mode, (m + k) % 2 == 0, gen);
        compare_all<std::int8_t>(m, n, k, (mode + 1) % 3, (n + k) % 2 == 0, gen);
      }
  // Larger blocks: several column blocks of the packed weights, deep K.
  compare_all<std::uint8_t>(65, 700, 1031, 0, true, gen);
  compare_all<std::int8_t>(19, 130, 3000, 2, true, gen);
  });
}

TEST_CASE("int8 GEMM is exact on extreme codes for every row count of the last panel") {
  // Codes only at the ends of their ranges and zero points at the far ends, so that the
  // products and the zero-point corrections are as large as they get; M = 1 .. 13 covers
  // every row count of the last panel on every path (6, 2 and 4 rows per panel), K a
  // multiple of 4 reads u8 rows in place, other depths copy them (zero-padded).
  paths::for_each([](etk::Isa) {
    std::mt19937 gen(4711);
    std::bernoulli_distribution pick(0.5);
    auto extremes = [&](auto lo, auto hi, std::ptrdiff_t rows, std::ptrdiff_t cols) {
      etk::RowMatrix<decltype(lo)> x(rows, cols);
      for (std::ptrdiff_t i = 0; i < x.size(); ++i) x.data()[i] = pick(gen) ? lo : hi;
      return x;
    };
    const std::ptrdiff_t n = 67;
    for (std::ptrdiff_t k : {3, 4, 64, 67, 132}) {
      const auto w = extremes(std::int8_t{-128}, std::int8_t{127}, n, k);
      std::vector<std::int32_t> w_zp(static_cast<std::size_t>(n));
      for (auto& z : w_zp) z = pick(gen) ? -128 : 127;
      const etk::PackedWeightsS8 packed(cview(w), w_zp);
      for (std::ptrdiff_t m = 1; m <= 13; ++m) {
        INFO("M " << m << " K " << k);
        const auto au = extremes(std::uint8_t{0}, std::uint8_t{255}, m, k);
        const auto as = extremes(std::int8_t{-128}, std::int8_t{127}, m, k);
        etk::RowMatrix<std::int32_t> out(m, n), ref(m, n);
        etk::int8_gemm_s32<std::uint8_t>(cview(au), 255, packed, {}, view(out));
        etk::reference::int8_gemm_s32(au.data(), m, k, k, 255, w.data(), n, k, w_zp, nullptr, ref.data(), n);
        REQUIRE((out.array() == ref.array()).all());
        etk::int8_gemm_s32<std::int8_t>(cview(as), -128, packed, {}, view(out));
        etk::reference::int8_gemm_s32(as.data(), m, k, k, -128, w.data(), n, k, w_zp, nullptr, ref.data(), n);
        REQUIRE((out.array() == ref.array()).all());
      }
    }
  });
}

TEST_CASE("the AMX tiles match the reference and the VNNI path bit for bit", "[threads]") {
  // Pins amx and avx512vnni in turn in one process (a unit with VNNI flags follows the pin
  // too). Randomised shapes: M 1 .. 70 (1 or 2 A tiles, fewer rows in the last), K 1 .. 300
  // with the depth-block edges 1, 3, 63, 64, 65 (the zero-padded tail block), N 1 .. 200
  // (partial B tiles and panels), every output form, then extreme codes and 2 threads.
  if (!etk::isa_supported(etk::Isa::amx)) {
    std::printf("SKIPPED the AMX tile test: this CPU (or its OS) runs paths up to %s, no AMX-INT8\n",
                etk::isa_name(etk::best_isa()));
    return;
  }
  std::mt19937 gen(1717);
  std::uniform_int_distribution<int> md(1, 70), kd(1, 300), nd(1, 200);
  const std::ptrdiff_t edges[] = {1, 3, 63, 64, 65};
  for (int trial = 0; trial < 14; ++trial) {
    const std::ptrdiff_t m = trial < 2 ? 16 * (trial + 1) + 1 : md(gen), n = nd(gen);
    const std::ptrdiff_t k = trial < 5 ? edges[trial] : kd(gen);
    const paths::Pin pin(etk::Isa::amx);
    etk::set_isa(etk::Isa::amx);  // also in a unit with ISA flags (Pin pins dispatched units only)
    const int mode = trial % 3;
    compare_all<std::uint8_t>(m, n, k, mode, trial % 2 == 0, gen);
    compare_all<std::int8_t>(m, n, k, (mode + 1) % 3, trial % 2 == 1, gen);
  }
  std::bernoulli_distribution pick(0.5);
  auto extremes = [&](auto lo, auto hi, std::ptrdiff_t rows, std::ptrdiff_t cols) {
    etk::RowMatrix<decltype(lo)> x(rows, cols);
    for (std::ptrdiff_t i = 0; i < x.size(); ++i) x.data()[i] = pick(gen) ? lo : hi;
    return x;
  };
  etk::SimpleThreadPool pool(2);
  for (std::ptrdiff_t k : {65, 300}) {
    const std::ptrdiff_t m = 101, n = 77;
    const auto w = extremes(std::int8_t{-128}, std::int8_t{127}, n, k);
    std::vector<std::int32_t> w_zp(static_cast<std::size_t>(n));
    for (auto& z : w_zp) z = pick(gen) ? -128 : 127;
    const etk::PackedWeightsS8 packed(cview(w), w_zp);
    const auto au = extremes(std::uint8_t{0}, std::uint8_t{255}, m, k);
    etk::RowMatrix<std::int32_t> ref(m, n);
    etk::reference::int8_gemm_s32(au.data(), m, k, k, 0, w.data(), n, k, w_zp, nullptr, ref.data(), n);
    for (etk::Isa isa : {etk::Isa::amx, etk::Isa::avx512vnni})
      for (etk::ThreadPool* tp : {static_cast<etk::ThreadPool*>(nullptr), static_cast<etk::ThreadPool*>(&pool)}) {
        const paths::Pin pin(isa);
        etk::set_isa(isa);
        INFO("K " << k << " path " << etk::isa_name(isa) << " threads " << (tp ? 2 : 1));
        etk::RowMatrix<std::int32_t> out(m, n);
        etk::int8_gemm_s32<std::uint8_t>(cview(au), 0, packed, {}, view(out), etk::Context{tp, nullptr});
        REQUIRE((out.array() == ref.array()).all());
      }
  }
}

TEST_CASE("int8 GEMM gives the same bits for any thread count, arena or none", "[threads]") {
  std::mt19937 gen(77);
  // 100 rows: 2 tasks of row panels on every path (16 panels of <= 6 rows per task);
  // 130 columns x K 2732: 3 weight panels of 683 * 256 bytes, 2 per 512 KiB block, so two
  // column blocks: 4 tasks.
  const std::ptrdiff_t m = 100, n = 130, k = 2732;
  const auto a = random_codes<std::uint8_t>(m, k, gen);
  const auto w = random_codes<std::int8_t>(n, k, gen);
  const etk::PackedWeightsS8 packed(cview(w), {3});
  std::vector<std::int32_t> bias(static_cast<std::size_t>(n), -12345);
  paths::for_each([&](etk::Isa) {
    etk::RowMatrix<std::int32_t> one(m, n);
    etk::int8_gemm_s32<std::uint8_t>(cview(a), 7, packed, bias, view(one));
    for (int threads : {2, 3}) {
      etk::SimpleThreadPool pool(threads);
      etk::ScratchArena arena(etk::int8_gemm_scratch_bytes(m, k, n));
      const void* planned = arena.data();
      const std::size_t capacity = arena.capacity();
      for (etk::ScratchArena* scratch : {static_cast<etk::ScratchArena*>(nullptr), &arena}) {
        const etk::Context ctx{&pool, scratch};
        etk::RowMatrix<std::int32_t> many(m, n);
        many.setConstant(-1);
        etk::int8_gemm_s32<std::uint8_t>(cview(a), 7, packed, bias, view(many), ctx);
        INFO("threads " << threads << " arena " << (scratch != nullptr));
        REQUIRE((many.array() == one.array()).all());
      }
      CHECK(arena.data() == planned);  // the planned arena was large enough: no regrowth
      CHECK(arena.capacity() == capacity);
    }
  });
}

TEST_CASE("SIMD requantization handles accumulators at the int32 extremes") {
  paths::for_each([](etk::Isa) {
  // K = 1 with a bias near the int32 limits drives the epilogue's 64-bit products and
  // shifts to their edges; every multiplier / shift pair from 2^-1 to 2^-31.
  const std::ptrdiff_t n = 48;
  etk::RowMatrix<std::int8_t> w(n, 1);
  etk::RowMatrix<std::uint8_t> a(3, 1);
  a << 0, 255, 128;
  w.setConstant(127);
  w(0, 0) = -128;
  const etk::PackedWeightsS8 packed(cview(w));
  const std::int32_t big = std::numeric_limits<std::int32_t>::max() - 255 * 128;
  for (std::int32_t sign : {1, -1}) {
    std::vector<std::int32_t> bias;
    for (std::ptrdiff_t j = 0; j < n; ++j) bias.push_back(sign * (big - static_cast<std::int32_t>(j) * 977));
    etk::Requantization rq;
    rq.qmin = -128;
    rq.qmax = 127;
    rq.multiplier.clear();
    rq.shift.clear();
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      std::int32_t m0 = 0, sh = 0;
      etk::Requantization::quantize_multiplier(std::ldexp(0.75 + 0.005 * static_cast<double>(j), -static_cast<int>(j % 32)) * 0.999,
                                               m0, sh);
      rq.multiplier.push_back(m0);
      rq.shift.push_back(sh);
    }
    etk::RowMatrix<std::int8_t> out(3, n), ref(3, n);
    etk::int8_gemm<std::uint8_t, std::int8_t>(cview(a), 0, packed, bias, rq, view(out));
    etk::reference::int8_gemm_requantized(a.data(), 3, 1, 1, 0, w.data(), n, 1, {0}, bias.data(), rq,
                                          ref.data(), n);
    REQUIRE((out.array() == ref.array()).all());
  }
  });
}

TEST_CASE("a zero point added to an accumulator at the int32 edge is exact on every path") {
  // u8 x s8 at the deepest accepted K = 65793 (65793 * 255 * 128 = 2^31 - 1 - 127):
  // (0 - 255) * (-128) summed plus bias 127 gives acc = 2^31 - 1; 255 * (-128) plus bias
  // -127 gives -(2^31 - 1). With multiplier 2^31 - 1 and shift 0 the rescaled value is
  // +-(2^31 - 2), and adding the output zero point 127 (or -128) first wraps int32 (the
  // SIMD epilogue wrote -128 where 127 is right; main then rejected the requantization).
  // The epilogue now clamps around the zero point before adding it: every path gives the
  // reference's 127 / -128, for shift 0 and for left shifts.
  const std::ptrdiff_t n = 16, k = 65793;
  etk::RowMatrix<std::int8_t> w(n, k);
  w.setConstant(-128);
  const etk::PackedWeightsS8 packed(cview(w));
  const std::int32_t max = std::numeric_limits<std::int32_t>::max();
  paths::for_each([&](etk::Isa) {
    for (std::int32_t zp : {127, -128}) {
      const bool up = zp > 0;
      etk::RowMatrix<std::uint8_t> a(2, k);
      a.setConstant(up ? 0 : 255);
      const std::int32_t a_zp = up ? 255 : 0;
      const std::vector<std::int32_t> bias(std::size_t(n), up ? 127 : -127);
      etk::RowMatrix<std::int32_t> acc(2, n);
      etk::int8_gemm_s32<std::uint8_t>(cview(a), a_zp, packed, bias, view(acc));
      REQUIRE(acc(0, 0) == (up ? max : -max));  // the extreme accumulator is reached
      for (std::int32_t shift : {0, -1, -31}) {
        etk::Requantization rq;
        rq.zero_point = zp;
        rq.multiplier = {max};
        rq.shift = {shift};
        etk::RowMatrix<std::int8_t> out(2, n), ref(2, n);
        etk::int8_gemm<std::uint8_t, std::int8_t>(cview(a), a_zp, packed, bias, rq, view(out));
        etk::reference::int8_gemm_requantized(a.data(), 2, k, k, a_zp, w.data(), n, k, {0}, bias.data(),
                                              rq, ref.data(), n);
        INFO("zero point " << zp << " shift " << shift);
        REQUIRE((out.array() == ref.array()).all());
        CHECK(int(out(0, 0)) == (up ? 127 : -128));
      }
    }
  });
}

TEST_CASE("multipliers >= 1: left shifts saturate, every path matches the reference") {
  // K = 1 with w = -128: a - a_zp = -255 (a = 0, a_zp = 255) plus a bias of
  // 2^31 - 1 - 255 * 128 gives acc = 2^31 - 1; a - a_zp = 255 with the negated bias gives
  // -(2^31 - 1); the other rows and biases fill the values between. Per-column
  // multipliers just below, at and just above 1, and up to 2^31 (left shifts up to 31);
  // zero points at both ends of the output range.
  const std::int32_t max = std::numeric_limits<std::int32_t>::max();
  std::vector<double> mults{std::nextafter(1.0, 0.0), 1.0 - std::ldexp(1.0, -31), 1.0, 1.0 + std::ldexp(1.0, -30),
                            std::nextafter(1.0, 2.0), 1.5, 2.0, 3.0, 255.0, 256.5, 0.75, 0.5};
  for (int e = 4; e <= 30; e += 2) mults.push_back(std::ldexp(1.0, e) * 1.37);
  mults.push_back(std::ldexp(1.0, 31) * 0.9999999);
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(mults.size());
  etk::Requantization rq;
  rq.multiplier.assign(mults.size(), 0);
  rq.shift.assign(mults.size(), 0);
  for (std::size_t j = 0; j < mults.size(); ++j)
    etk::Requantization::quantize_multiplier(mults[j], rq.multiplier[j], rq.shift[j]);
  CHECK(rq.shift[2] == -1);  // m = 1: M0 = 2^30 and one left shift
  CHECK(rq.multiplier[2] == (1 << 30));
  CHECK(rq.shift.back() == -31);
  etk::RowMatrix<std::int8_t> w(n, 1);
  w.setConstant(-128);
  const etk::PackedWeightsS8 packed(cview(w));
  etk::RowMatrix<std::uint8_t> a(5, 1);
  a << 0, 1, 128, 254, 255;
  const std::int32_t edge = max - 255 * 128;
  {
    etk::RowMatrix<std::int32_t> acc(5, n);
    etk::int8_gemm_s32<std::uint8_t>(cview(a), 255, packed, std::vector<std::int32_t>(std::size_t(n), edge), view(acc));
    REQUIRE(acc(0, 0) == max);
    etk::int8_gemm_s32<std::uint8_t>(cview(a), 0, packed, std::vector<std::int32_t>(std::size_t(n), -edge), view(acc));
    REQUIRE(acc(4, 0) == -max);
  }
  paths::for_each([&](etk::Isa) {
    for (std::int32_t a_zp : {0, 255})
      for (std::int32_t b : {edge, -edge, edge - 1, 0, 1, -1, 100, -129, 1 << 24}) {
        const std::vector<std::int32_t> bias(static_cast<std::size_t>(n), b);
        for (bool u8 : {false, true})
          for (int end = 0; end < 2; ++end) {
            rq.qmin = u8 ? 0 : -128;
            rq.qmax = u8 ? 255 : 127;
            rq.zero_point = end ? rq.qmax : rq.qmin;
            INFO("a_zp " << a_zp << " bias " << b << " u8 " << u8 << " zero point " << rq.zero_point);
            if (u8) {
              etk::RowMatrix<std::uint8_t> out(5, n), ref(5, n);
              etk::int8_gemm<std::uint8_t, std::uint8_t>(cview(a), a_zp, packed, bias, rq, view(out));
              etk::reference::int8_gemm_requantized(a.data(), 5, 1, 1, a_zp, w.data(), n, 1, {0}, bias.data(), rq,
                                                    ref.data(), n);
              REQUIRE((out.array() == ref.array()).all());
            } else {
              etk::RowMatrix<std::int8_t> out(5, n), ref(5, n);
              etk::int8_gemm<std::uint8_t, std::int8_t>(cview(a), a_zp, packed, bias, rq, view(out));
              etk::reference::int8_gemm_requantized(a.data(), 5, 1, 1, a_zp, w.data(), n, 1, {0}, bias.data(), rq,
                                                    ref.data(), n);
              REQUIRE((out.array() == ref.array()).all());
            }
          }
      }
  });
}

TEST_CASE("requantize_value with a left shift equals the exact rounded product, saturated") {
  // For m = M0 * 2^-31 * 2^L and |x * 2^L| < 2^31 the pipeline is round(x * m) (ties
  // upward) + zp, clamped; beyond that the shifted value saturates first. Checked against
  // the exact value in long double (64-bit mantissa: x * M0 * 2^L < 2^63 is exact).
  CHECK(etk::saturating_left_shift(std::numeric_limits<std::int32_t>::max(), 31) == std::numeric_limits<std::int32_t>::max());
  CHECK(etk::saturating_left_shift(-1, 31) == std::numeric_limits<std::int32_t>::min());
  CHECK(etk::saturating_left_shift(-2, 30) == std::numeric_limits<std::int32_t>::min());
  CHECK(etk::saturating_left_shift(-3, 30) == std::numeric_limits<std::int32_t>::min());
  CHECK(etk::saturating_left_shift(1, 30) == (1 << 30));
  CHECK(etk::saturating_left_shift(2, 30) == std::numeric_limits<std::int32_t>::max());
  CHECK(etk::saturating_left_shift(12345, 0) == 12345);
  CHECK(etk::requantize_value(100, 1 << 30, -1, 0, -128, 127) == 100);   // m = 1
  CHECK(etk::requantize_value(-100, 1 << 30, -1, 5, -128, 127) == -95);
  CHECK(etk::requantize_value(3, 3 << 29, -1, 0, -128, 127) == 5);       // m = 1.5: 4.5 -> 5
  CHECK(etk::requantize_value(-3, 3 << 29, -1, 0, -128, 127) == -4);     // -4.5 -> -4
  std::mt19937 gen(13);
  std::uniform_int_distribution<int> xd(-100000, 100000), ld(0, 31);
  std::uniform_int_distribution<std::int32_t> md(1 << 30, std::numeric_limits<std::int32_t>::max());
  for (int i = 0; i < 20000; ++i) {
    const std::int32_t x = xd(gen), m0 = md(gen);
    const int left = ld(gen);
    const std::int32_t zp = i % 2 ? 127 : -128;
    const std::int64_t shifted = std::max<std::int64_t>(std::numeric_limits<std::int32_t>::min(),
        std::min<std::int64_t>(std::numeric_limits<std::int32_t>::max(), static_cast<std::int64_t>(x) * (std::int64_t(1) << left)));
    const long double exact = std::floor(static_cast<long double>(shifted) * m0 / 2147483648.0L + 0.5L);
    const long double y = std::min<long double>(127, std::max<long double>(-128, exact + zp));
    INFO("x " << x << " m0 " << m0 << " left " << left);
    REQUIRE(etk::requantize_value(x, m0, -left, zp, -128, 127) == static_cast<std::int32_t>(y));
  }
}

TEST_CASE("requantization helpers follow gemmlowp's definition") {
  // SRDHM: round(a * b / 2^31) with ties upward on the nudged product.
  CHECK(etk::saturating_rounding_doubling_high_mul(std::numeric_limits<std::int32_t>::min(),
                                                   std::numeric_limits<std::int32_t>::min()) ==
        std::numeric_limits<std::int32_t>::max());
  CHECK(etk::saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == (1 << 29));
  CHECK(etk::saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1);  // -1.5 -> -1
  CHECK(etk::saturating_rounding_doubling_high_mul(3, 1 << 30) == 2);    // 1.5 -> 2
  CHECK(etk::saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0);   // -0.5 -> 0 (upward)
  // Rounding divide by 2^n: ties away from zero.
  CHECK(etk::rounding_divide_by_pot(5, 1) == 3);
  CHECK(etk::rounding_divide_by_pot(-5, 1) == -3);
  CHECK(etk::rounding_divide_by_pot(-6, 2) == -2);
  CHECK(etk::rounding_divide_by_pot(6, 2) == 2);
  // Quantized multiplier is within 2^-31 relative of the real one, for multipliers below
  // and above 1 (left shifts).
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> lm(-31.0, 30.999);
  for (int i = 0; i < 1000; ++i) {
    const double m = std::exp2(lm(gen));
    std::int32_t m0 = 0, sh = 0;
    etk::Requantization::quantize_multiplier(m, m0, sh);
    REQUIRE(m0 >= (1 << 30));
    REQUIRE(sh >= -31);
    REQUIRE(sh <= 31);
    REQUIRE((m >= 1.0) == (sh < 0));
    REQUIRE(std::fabs(std::ldexp(static_cast<double>(m0), -31 - sh) - m) <= m * std::ldexp(1.0, -31));
  }
  std::int32_t m0 = 0, sh = 0;
  etk::Requantization::quantize_multiplier(1.5, m0, sh);  // rejected on main
  CHECK(m0 == (3 << 29));
  CHECK(sh == -1);
  CHECK_THROWS_WITH(etk::Requantization::quantize_multiplier(std::ldexp(1.0, 31), m0, sh), Catch::Contains("multiplier"));
  CHECK_THROWS_WITH(etk::Requantization::quantize_multiplier(std::nextafter(std::ldexp(1.0, 31), 0.0), m0, sh),
                    Catch::Contains("multiplier"));
  CHECK_THROWS_WITH(etk::Requantization::quantize_multiplier(0.0, m0, sh), Catch::Contains("multiplier"));
  CHECK_THROWS_WITH(etk::Requantization::quantize_multiplier(-2.0, m0, sh), Catch::Contains("multiplier"));
}

TEST_CASE("int8 GEMM accepts the deepest safe K and rejects one more") {
  // u8 x s8, zero points 0, no bias: K * 255 * 128 <= 2^31 - 1 gives K <= 65793. With every
  // a = 255 and w = -128 the true accumulator is -K * 32640, the most negative possible.
  const std::ptrdiff_t kmax = 65793;
  etk::RowMatrix<std::uint8_t> a(1, kmax + 1);
  a.setConstant(255);
  etk::RowMatrix<std::int8_t> w(2, kmax + 1);
  w.setConstant(-128);
  {
    const etk::PackedWeightsS8 packed(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), 2, kmax, kmax + 1));
    etk::RowMatrix<std::int32_t> out(1, 2);
    etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), 1, kmax, kmax + 1),
                                     0, packed, {}, view(out));
    CHECK(out(0, 0) == -kmax * 32640);
    CHECK(out(0, 1) == -kmax * 32640);
  }
  const etk::PackedWeightsS8 packed(cview(w));
  etk::RowMatrix<std::int32_t> out(1, 2);
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(cview(a), 0, packed, {}, view(out)),
                    Catch::Contains("overflow"));
  // A bias eats into the budget too.
  const etk::PackedWeightsS8 packed_k(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), 2, kmax, kmax + 1));
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), 1, kmax, kmax + 1),
                                                     0, packed_k, {1 << 20, 0}, view(out)),
                    Catch::Contains("overflow"));
}

TEST_CASE("int8 GEMM rejects bad input") {
  std::mt19937 gen(3);
  const auto a = random_codes<std::uint8_t>(4, 8, gen);
  const auto w = random_codes<std::int8_t>(5, 8, gen);
  const etk::PackedWeightsS8 packed(cview(w));
  etk::RowMatrix<std::int32_t> out(4, 5);
  const auto av = cview(a);
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(a.data(), 0, 8, 8), 0, packed, {}, view(out)),
                    Catch::Contains("empty"));
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(a.data(), 4, 7, 8), 0, packed, {}, view(out)),
                    Catch::Contains("depth"));
  etk::RowMatrix<std::int32_t> wrong(4, 6);
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(av, 0, packed, {}, view(wrong)), Catch::Contains("'out'"));
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(av, 0, packed, {1, 2}, view(out)), Catch::Contains("'bias'"));
  CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(av, 256, packed, {}, view(out)), Catch::Contains("a_zero_point"));
  CHECK_THROWS_WITH(etk::PackedWeightsS8(cview(w), {200}), Catch::Contains("zero_point"));
  CHECK_THROWS_WITH(etk::PackedWeightsS8(cview(w), {1, 2}), Catch::Contains("zero_point"));
  CHECK_THROWS_WITH(etk::PackedWeightsS8(etk::matrix_view(w.data(), 0, 8, 8)), Catch::Contains("empty"));
  etk::RowMatrixXf f(4, 5);
  CHECK_THROWS_WITH(etk::int8_gemm_f32<std::uint8_t>(av, 0, packed, {}, {0.0f}, view(f)), Catch::Contains("out_scale"));
  CHECK_THROWS_WITH(etk::int8_gemm_f32<std::uint8_t>(av, 0, packed, {}, {1.0f, 2.0f}, view(f)), Catch::Contains("out_scale"));
  etk::RowMatrix<std::int8_t> o8(4, 5);
  etk::Requantization rq;
  rq.multiplier = {12345};  // not normalised
  CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::int8_t>(av, 0, packed, {}, rq, view(o8))), Catch::Contains("Q0.31"));
  rq = etk::Requantization{};
  rq.shift = {40};
  CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::int8_t>(av, 0, packed, {}, rq, view(o8))), Catch::Contains("shift"));
  rq.shift = {-32};
  CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::int8_t>(av, 0, packed, {}, rq, view(o8))), Catch::Contains("shift"));
  rq = etk::Requantization{};
  rq.qmin = 0;
  rq.qmax = 255;
  CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::int8_t>(av, 0, packed, {}, rq, view(o8))), Catch::Contains("output type"));
  rq.multiplier = {1 << 30, 1 << 30};
  rq.shift = {0, 0};
  CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::int8_t>(av, 0, packed, {}, rq, view(o8))), Catch::Contains("multipliers"));
}

TEST_CASE("every int8 GEMM path computes the same bits, in one process") {
  // The paths are pinned in turn whatever ETK_ISA says; each one's output is compared with
  // the first path's (scalar) bit for bit. Only meaningful in the dispatch build.
  if (!etk::dispatched()) return;
  std::mt19937 gen(99);
  const std::ptrdiff_t m = 37, n = 131, k = 301;
  const auto a = random_codes<std::int8_t>(m, k, gen);
  const auto w = random_codes<std::int8_t>(n, k, gen);
  const etk::PackedWeightsS8 packed(cview(w), {-7});
  const etk::Requantization rq = random_requant(n, true, false, gen);
  std::vector<etk::RowMatrix<std::int8_t>> outs;
  for (etk::Isa isa : paths::with_amx()) {
    if (!etk::isa_supported(isa)) {
      std::printf("SKIPPED path %s: this CPU runs paths up to %s\n", etk::isa_name(isa), etk::isa_name(etk::best_isa()));
      continue;
    }
    const paths::Pin pin(isa);
    outs.emplace_back(m, n);
    etk::int8_gemm<std::int8_t, std::int8_t>(cview(a), -3, packed, {}, rq, view(outs.back()));
    INFO("path " << etk::isa_name(isa));
    REQUIRE((outs.back().array() == outs.front().array()).all());
  }
  CHECK(!outs.empty());
}

TEST_CASE("int8 gemm: a depth beyond every accepted bound is rejected before the column sums") {
  // K = 2^25 rows of -128 would overflow an int32 column sum (2^32) during packing.
  const std::ptrdiff_t k = std::ptrdiff_t(1) << 25;
  std::vector<std::int8_t> w(static_cast<std::size_t>(k), -128);
  CHECK_THROWS_WITH(etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), 1, k, k)),
                    Catch::Contains("'w'") && Catch::Contains("depth"));
  const std::ptrdiff_t deepest = etk::PackedWeightsS8::kMaxDepth;
  CHECK_THROWS_AS(etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), 1, deepest + 1, deepest + 1)),
                  etk::invalid_argument);
  const etk::PackedWeightsS8 packed(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), 1, deepest, deepest));
  CHECK(packed.col_sum()[0] == -128 * deepest);
}

TEST_CASE("int8 gemm: outputs whose rows overlap are rejected") {
  etk::RowMatrix<std::int8_t> wm(3, 5);
  wm.setConstant(1);
  const etk::PackedWeightsS8 w(etk::matrix_view(static_cast<const std::int8_t*>(wm.data()), 3, 5, 5));
  etk::RowMatrix<std::uint8_t> a(4, 5);
  a.setConstant(2);
  const auto av = etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), 4, 5, 5);
  std::vector<std::int32_t> acc(32);
  std::vector<float> f(32);
  std::vector<std::uint8_t> q(32);
  etk::Requantization rq;
  rq.multiplier = {1 << 30};
  rq.shift = {0};
  rq.zero_point = 0;
  rq.qmin = 0;
  rq.qmax = 255;
  for (std::ptrdiff_t stride : {0, 2}) {
    CHECK_THROWS_WITH(etk::int8_gemm_s32<std::uint8_t>(av, 0, w, {}, etk::matrix_view(acc.data(), 4, 3, stride)),
                      Catch::Contains("'out'") && Catch::Contains("overlap"));
    CHECK_THROWS_WITH(etk::int8_gemm_f32<std::uint8_t>(av, 0, w, {}, {1.0f}, etk::matrix_view(f.data(), 4, 3, stride)),
                      Catch::Contains("'out'"));
    CHECK_THROWS_WITH((etk::int8_gemm<std::uint8_t, std::uint8_t>(av, 0, w, {}, rq, etk::matrix_view(q.data(), 4, 3, stride))),
                      Catch::Contains("'out'"));
  }
  etk::int8_gemm_s32<std::uint8_t>(av, 0, w, {}, etk::matrix_view(acc.data(), 4, 3, 3));
  CHECK(acc[0] == 10);
}

TEST_CASE("int8 GEMM takes biases and scales as spans: vector, array, Eigen, pointer + size") {
  // On main these arguments had to be std::vectors.
  std::mt19937 gen(8);
  const auto a = random_codes<std::uint8_t>(7, 9, gen);
  const auto w = random_codes<std::int8_t>(3, 9, gen);
  const etk::PackedWeightsS8 packed(cview(w));
  const std::vector<std::int32_t> bias_v{5, -6, 7};
  const std::array<std::int32_t, 3> bias_a{5, -6, 7};
  Eigen::VectorXi bias_e(3);
  bias_e << 5, -6, 7;
  etk::RowMatrix<std::int32_t> ref(7, 3), out(7, 3);
  etk::int8_gemm_s32<std::uint8_t>(cview(a), 3, packed, bias_v, view(ref));
  etk::int8_gemm_s32<std::uint8_t>(cview(a), 3, packed, bias_a, view(out));
  CHECK((out.array() == ref.array()).all());
  out.setZero();
  etk::int8_gemm_s32<std::uint8_t>(cview(a), 3, packed, bias_e, view(out));
  CHECK((out.array() == ref.array()).all());
  out.setZero();
  etk::int8_gemm_s32<std::uint8_t>(cview(a), 3, packed, etk::Span<std::int32_t>(bias_v.data(), 3), view(out));
  CHECK((out.array() == ref.array()).all());
  const Eigen::RowVector3f scale(0.5f, 0.25f, 2.0f);
  etk::RowMatrixXf f(7, 3), f_ref(7, 3);
  etk::int8_gemm_f32<std::uint8_t>(cview(a), 3, packed, bias_e, scale, view(f));
  etk::reference::int8_gemm_f32(a.data(), 7, 9, 9, 3, w.data(), 3, 9, {0}, bias_v.data(),
                                std::vector<float>{0.5f, 0.25f, 2.0f}, f_ref.data(), 3);
  CHECK((f.array() == f_ref.array()).all());
  const std::array<float, 2> w_scale{0.01f, 0.02f};
  CHECK_THROWS_WITH(etk::Requantization::from_scales(0.1, etk::Span<float>(w_scale.data(), 0),
                                                     etk::QuantParams::per_tensor(0.1f, 0, 8, true)),
                    Catch::Contains("w_scale"));
  const etk::Requantization rq = etk::Requantization::from_scales(0.1, w_scale, etk::QuantParams::per_tensor(0.1f, 0, 8, true));
  CHECK(rq.multiplier.size() == 2);
}
