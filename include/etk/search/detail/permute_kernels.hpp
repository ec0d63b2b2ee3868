// etk/search/detail/permute_kernels.hpp: the activation codec's moves between channel
// order and group order (importance groups scattered over the channels).
//
// Encoding: a FloatPermutation applies dst[j] = src[idx[j]] to rows of floats (exact
// copies). It is precomputed as, for every 16 outputs, the list of 32-float source
// windows that feed them with a vpermt2ps index vector and a lane mask per window (a
// window that feeds no lane of an output vector is skipped); the AVX-512 path runs that
// list, the others a plain loop (permute_kernels.inl, compiled per dispatch path).
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
#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

ETK_BEGIN_NAMESPACE
namespace detail::permute_layout {

// One 32-float source window of an output vector of 16 floats.
struct Step {
  std::int32_t window;   // source floats [32 window, 32 window + 32)
  std::uint16_t mask;    // output lanes fed by this window
  std::int32_t index[16];
};

// dst[j] = src[idx[j]]: the index list, and per output vector v its windows
// steps[start[v] .. start[v + 1]).
struct Table {
  std::vector<Step> steps;
  std::vector<std::int32_t> start;
  std::vector<std::int32_t> idx;
  std::ptrdiff_t src_size = 0;
};

}  // namespace detail::permute_layout
ETK_END_NAMESPACE

#define ETK_TARGET_FILE "etk/search/detail/permute_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace search {
namespace detail {

class FloatPermutation {
 public:
  FloatPermutation() = default;
  // dst[j] = src[idx[j]], j < idx.size(); every idx[j] in [0, src_size). The AVX-512
  // windows are built on every CPU: the path is chosen per call.
  FloatPermutation(const std::vector<std::int32_t>& idx, std::ptrdiff_t src_size) {
    t_.idx = idx;
    t_.src_size = src_size;
    const std::ptrdiff_t n = std::ptrdiff_t(idx.size());
    for (std::ptrdiff_t o = 0; o < n; o += 16) {
      t_.start.push_back(std::int32_t(t_.steps.size()));
      for (std::int32_t w = 0; w * 32 < src_size; ++w) {
        etk::detail::permute_layout::Step st{w, 0, {}};
        for (std::ptrdiff_t l = 0; l < 16 && o + l < n; ++l) {
          const std::int32_t i = idx[std::size_t(o + l)];
          st.index[l] = i & 31;
          if (i / 32 == w) st.mask = std::uint16_t(st.mask | (1u << l));
        }
        if (st.mask) t_.steps.push_back(st);
      }
    }
    t_.start.push_back(std::int32_t(t_.steps.size()));
  }

  std::ptrdiff_t size() const { return std::ptrdiff_t(t_.idx.size()); }

  void apply(const float* src, float* dst) const { apply_permutation(t_, src, dst); }

 private:
  static void apply_permutation(const etk::detail::permute_layout::Table& t, const float* src, float* dst) {
    ETK_DISPATCH_RETURN(detail::permute_kernels::apply(t, src, dst));
  }
  etk::detail::permute_layout::Table t_;
};

// codes[idx[j]] = code j of the stream `in` (packed_bytes(n, bits) bytes), j < n.
inline void unpack_scatter(const std::uint8_t* in, const std::int32_t* idx, std::size_t n, int bits,
                           std::uint8_t* codes) {
  const unsigned b = unsigned(bits);
  const etk::detail::bit_swar::Swar w(b);
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
