// etk/search/detail/permute_kernels.hpp: the activation codec's moves between channel
// order and group order (importance groups scattered over the channels).
//
// Encoding: a FloatPermutation applies dst[j] = src[idx[j]] to rows of floats (exact
// copies). On AVX-512 it is precomputed as, for every 16 outputs, the list of 32-float
// source windows that feed them with a vpermt2ps index vector and a lane mask per window
// (a window that feeds no lane of an output vector is skipped); elsewhere a plain loop.
// (vgatherdps was slower than the scalar loop on Zen 4.)
// Decoding: unpack_scatter unpacks each group's stream straight into the channels' code
// bytes (eight codes at a time through the SWAR word of etk/core/detail/bit_swar.hpp, the
// inverse of pack_bits exactly, tested); the row is then dequantized once, in channel
// order (measured faster than dequantizing in group order and permuting the floats).
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/detail/bit_swar.hpp"

#if defined(ETK_HAS_AVX512)
#include <immintrin.h>
#endif

ETK_BEGIN_NAMESPACE
namespace search {
namespace detail {

class FloatPermutation {
 public:
  FloatPermutation() = default;
  // dst[j] = src[idx[j]], j < idx.size(); every idx[j] in [0, src_size).
  FloatPermutation(const std::vector<std::int32_t>& idx, std::ptrdiff_t src_size)
      : idx_(idx), src_size_(src_size) {
#if defined(ETK_HAS_AVX512)
    const std::ptrdiff_t n = std::ptrdiff_t(idx.size());
    for (std::ptrdiff_t o = 0; o < n; o += 16) {
      start_.push_back(std::int32_t(steps_.size()));
      for (std::int32_t w = 0; w * 32 < src_size; ++w) {
        Step st{w, 0, {}};
        for (std::ptrdiff_t l = 0; l < 16 && o + l < n; ++l) {
          const std::int32_t i = idx[std::size_t(o + l)];
          st.index[l] = i & 31;
          if (i / 32 == w) st.mask = std::uint16_t(st.mask | (1u << l));
        }
        if (st.mask) steps_.push_back(st);
      }
    }
    start_.push_back(std::int32_t(steps_.size()));
#endif
  }

  std::ptrdiff_t size() const { return std::ptrdiff_t(idx_.size()); }

  void apply(const float* src, float* dst) const {
#if defined(ETK_HAS_AVX512)
    const std::ptrdiff_t n = size();
    for (std::ptrdiff_t o = 0, v = 0; o < n; o += 16, ++v) {
      __m512 acc = _mm512_setzero_ps();
      for (std::int32_t s = start_[std::size_t(v)]; s < start_[std::size_t(v + 1)]; ++s) {
        const Step& st = steps_[std::size_t(s)];
        const std::ptrdiff_t base = std::ptrdiff_t(st.window) * 32;
        const __m512 a = _mm512_maskz_loadu_ps(tail(src_size_ - base), src + base);
        const __m512 b = _mm512_maskz_loadu_ps(tail(src_size_ - base - 16), src + base + 16);
        const __m512i index = _mm512_loadu_si512(st.index);
        acc = _mm512_mask_mov_ps(acc, st.mask, _mm512_permutex2var_ps(a, index, b));
      }
      _mm512_mask_storeu_ps(dst + o, tail(n - o), acc);
    }
#else
    for (std::size_t j = 0; j < idx_.size(); ++j) dst[j] = src[idx_[j]];
#endif
  }

 private:
#if defined(ETK_HAS_AVX512)
  static __mmask16 tail(std::ptrdiff_t left) {
    return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
  struct Step {
    std::int32_t window;   // source floats [32 window, 32 window + 32)
    std::uint16_t mask;    // output lanes fed by this window
    std::int32_t index[16];
  };
  std::vector<Step> steps_;
  std::vector<std::int32_t> start_;  // steps of output vector v: [start_[v], start_[v + 1])
#endif
  std::vector<std::int32_t> idx_;
  std::ptrdiff_t src_size_ = 0;
};

// codes[idx[j]] = code j of the stream `in` (packed_bytes(n, bits) bytes), j < n.
inline void unpack_scatter(const std::uint8_t* in, const std::int32_t* idx, std::size_t n, int bits,
                           std::uint8_t* codes) {
  const unsigned b = unsigned(bits);
  const bit_swar::Swar w(b);
  const std::uint8_t* const end = in + (n * b + 7) / 8;
  const std::uint8_t* p = in;
  for (std::size_t i = 0; i < n; i += 8, p += b) {
    const unsigned m = unsigned(std::min<std::size_t>(8, n - i));
    std::uint64_t v = 0;
    if (end - p >= 8) {
      std::memcpy(&v, p, 8);
    } else {
      const unsigned bytes = (m * b + 7) / 8;
      for (unsigned k = 0; k < bytes; ++k) v |= std::uint64_t(p[k]) << (8 * k);
    }
    v = w.unpack(v);
    if (m == 8) {
      for (unsigned k = 0; k < 8; ++k) codes[idx[i + k]] = std::uint8_t(v >> (8 * k));
    } else {
      for (unsigned k = 0; k < m; ++k) codes[idx[i + k]] = std::uint8_t(v >> (8 * k));
    }
  }
}

}  // namespace detail
}  // namespace search
ETK_END_NAMESPACE
