// etk/lut/detail/descent.hpp: threshold tables for a branch-free binary descent.
//
// For sorted thresholds t_0 < ... < t_{m-1} and S = the power of two > m: idx = 0, then
// for step = S/2, ..., 1: idx += step if x passes t[idx + step - 1]. Thresholds past the
// last are `pad`, chosen so that no x passes it, which gives idx = #{k : x passes t_k}.
// tree[level][i] = t[i + step - 1] for the level's step, so a register permute (or byte
// shuffle) by idx fetches every lane's threshold; only i multiple of 2 step are read.
#pragma once

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

template <typename T>
struct DescentTree {
  alignas(64) T tree[4][16];
  int levels = 0;  // log2(S), at most 4 (m <= 15)
  int top = 0;     // S / 2

  DescentTree(const T* t, int m, T pad) {
    int size = 1;
    while (size <= m) size *= 2;
    top = size / 2;
    for (int step = top; step >= 1; step /= 2, ++levels)
      for (int i = 0; i < 16; ++i) {
        const int k = i + step - 1;
        tree[levels][i] = k < m ? t[k] : pad;
      }
  }
};

}  // namespace detail
}  // namespace lut
ETK_END_NAMESPACE
