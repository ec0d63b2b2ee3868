// etk/attention/detail/decode_scalar.inl: portable primitives of decoding over a KVCache
// (layouts in kv_cache.hpp, the arranged query rows in decode_kernels.hpp);
// decode_avx512.inl implements the same contracts. Compiled once per dispatch path
// through decode_kernels.inl (no include guard, no includes).
// Bounds: a dot of an arranged row (|q| <= 128) with nibbles (<= 15) over 8L <= kMaxDim + 7
// dims is <= 128 * 15 * 8199 < 2^24: int32 with room to spare; with byte codes + 128
// (<= 255, block_scores) it is <= 128 * 255 * 8199 < 2^28.
namespace detail::decode {
namespace scalar {

inline std::int32_t nibble_dot(const std::uint8_t* x, std::ptrdiff_t L, std::ptrdiff_t stride,
                               const std::int8_t* q) {
  std::int32_t acc = 0;
  for (std::ptrdiff_t l = 0; l < L; ++l)
    for (std::ptrdiff_t t = 0; t < 4; ++t) {
      const std::uint8_t b = x[l * stride + t];
      acc += std::int32_t(q[4 * l + t]) * (b & 15) + std::int32_t(q[4 * L + 4 * l + t]) * (b >> 4);
    }
  return acc;
}

// out[r*ldo + kk] = arranged row r of q (nrows rows, ldq apart) . (MS4B nibbles + 8) of key
// kk, for the 16 keys of one MS4B block; every |q| <= qmax (used by the AVX2 body).
inline void block_dots(const std::uint8_t* hi, std::ptrdiff_t L, const std::int8_t* q,
                       std::ptrdiff_t ldq, int nrows, int qmax, std::int32_t* out, std::ptrdiff_t ldo) {
  (void)qmax;
  for (int r = 0; r < nrows; ++r)
    for (std::ptrdiff_t kk = 0; kk < 16; ++kk)
      out[r * ldo + kk] = nibble_dot(hi + kk * 4, L, 64, q + r * ldq);
}

// out[s] = q . (LS4B nibbles) of page-local key idx[s], from the page's LS4B rows.
inline void lo_dots(const std::uint8_t* lo, std::ptrdiff_t L, const std::int32_t* idx,
                    std::ptrdiff_t n, const std::int8_t* q, std::int32_t* out) {
  for (std::ptrdiff_t s = 0; s < n; ++s) out[s] = nibble_dot(lo + std::ptrdiff_t(idx[s]) * L * 4, L, 4, q);
}

// LATTE's survivor test on keys [lo, hi) of one 16-key block (E = its offset estimates,
// corr the row's offset, unit = estimate_unit of the block): appends base + j to idx for
// every j with float(E[j] - corr) * unit >= cut; returns how many (idx has 16 of slack).
inline std::ptrdiff_t select_block(const std::int32_t* E, int lo, int hi, std::int32_t corr,
                                   float unit, float cut, std::int32_t base, std::int32_t* idx) {
  std::ptrdiff_t m = 0;
  for (int j = lo; j < hi; ++j) {
    idx[m] = base + j;
    m += float(E[j] - corr) * unit >= cut;
  }
  return m;
}

// o[c] = sum_s w[s] * value(idx[s])[c] over a page's value rows (int8: weight times the
// block scale, then times the code).
inline void weighted_values(KVValueType type, const float* w, const std::int32_t* idx,
                            std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                            const float* vscale, std::ptrdiff_t dv, float* o) {
  if (type == KVValueType::fp32) {  // rows are 4-byte aligned: LATTE's own P*V
    detail::latte::scalar::gather_pv(w, idx, n, reinterpret_cast<const float*>(values), row_bytes / 4, dv, o);
    return;
  }
  for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = 0.0f;
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const std::uint8_t* row = values + std::ptrdiff_t(idx[s]) * row_bytes;
    switch (type) {
      case KVValueType::fp32: break;
      case KVValueType::fp16:
        for (std::ptrdiff_t c = 0; c < dv; ++c) {
          Eigen::half x;
          std::memcpy(&x, row + 2 * c, 2);
          o[c] += w[s] * float(x);
        }
        break;
      case KVValueType::bf16:
        for (std::ptrdiff_t c = 0; c < dv; ++c) {
          Eigen::bfloat16 x;
          std::memcpy(&x, row + 2 * c, 2);
          o[c] += w[s] * float(x);
        }
        break;
      case KVValueType::int8: {
        const float ws = w[s] * vscale[idx[s] / 16];
        for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] += ws * float(static_cast<std::int8_t>(row[c]));
        break;
      }
    }
  }
}

// weighted_values for nrows weight rows (ldw apart) over the same keys, into o rows (ldo
// apart); each row's result equals a weighted_values call on it, bit for bit.
inline void weighted_values_rows(KVValueType type, const float* w, std::ptrdiff_t ldw, int nrows,
                                 const std::int32_t* idx, std::ptrdiff_t n,
                                 const std::uint8_t* values, std::ptrdiff_t row_bytes,
                                 const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  for (int r = 0; r < nrows; ++r)
    weighted_values(type, w + r * ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo);
}

}  // namespace scalar
}  // namespace detail::decode
