// etk/pruning/compact.hpp: structured token pruning at inference.
//
// compact_rows copies the kept rows of a [seq, dim] activation into a shorter contiguous
// [n_keep, dim] buffer in their original order, so the next layers run real, smaller
// GEMMs. The KeepSet (ascending kept indices) is the index map: compact row r came from
// row keep[r]. scatter_rows is the inverse, for models that need every position at the
// output (a CTC or dense-prediction head): it writes the compact rows back into a full
// buffer, leaving pruned rows untouched, so they keep the value they had when pruned.
// Across layers, compose_keep turns a layer-local KeepSet into original positions.
// Fast path: one memcpy per row (memmove when compacting in place); the reference twin
// (reference/compact.hpp) copies element by element. Cost is O(n_keep * dim) bytes moved,
// far below one attention layer (bench/pruning/bm_compact.cpp).
#pragma once

#include <cstring>
#include <type_traits>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE

namespace detail::pruning {
// keep: non-empty, strictly ascending, each in [0, seq).
inline void check_keep_set(const KeepSet& keep, std::ptrdiff_t seq) {
  ETK_CHECK(!keep.empty(), "argument 'keep' is empty (at least one token must survive)");
  for (std::size_t r = 0; r < keep.size(); ++r) {
    ETK_CHECK(keep[r] >= 0 && keep[r] < seq,
              "argument 'keep' holds " << keep[r] << " at " << r << ", outside [0, " << seq << ")");
    ETK_CHECK(r == 0 || keep[r] > keep[r - 1],
              "argument 'keep' is not strictly ascending at " << r << " (" << keep[r - 1]
                                                                << ", " << keep[r] << ")");
  }
}

}  // namespace detail::pruning

// out[r, :] = x[keep[r], :]. out must be [keep.size(), x.cols()]. out may be x itself
// (same data pointer and stride: in-place compaction); other overlaps are not allowed.
template <typename T>
void compact_rows(ConstMatrixView<T> x, const KeepSet& keep, MatrixView<T> out) {
  static_assert(std::is_trivially_copyable<T>::value, "compact_rows copies raw rows");
  detail::pruning::check_keep_set(keep, x.rows());
  check::equal("out", out.rows(), "rows (kept tokens)", static_cast<std::ptrdiff_t>(keep.size()));
  check::equal("out", out.cols(), "cols (dim)", x.cols());
  const bool in_place = out.data() == x.data();
  ETK_CHECK(!in_place || out.outerStride() == x.outerStride(),
            "argument 'out' aliases 'x' with a different row stride");
  const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(x.cols());
  for (std::size_t r = 0; r < keep.size(); ++r) {
    const T* src = x.data() + keep[r] * x.outerStride();
    T* dst = out.data() + static_cast<std::ptrdiff_t>(r) * out.outerStride();
    if (in_place) {
      if (src != dst) std::memmove(dst, src, bytes);  // r < keep[r]: rows move forward
    } else {
      std::memcpy(dst, src, bytes);
    }
  }
}

template <typename T>
RowMatrix<T> compact_rows(ConstMatrixView<T> x, const KeepSet& keep) {
  RowMatrix<T> out(static_cast<Eigen::Index>(keep.size()), x.cols());
  compact_rows<T>(x, keep, matrix_view(out.data(), out.rows(), out.cols(), out.cols()));
  return out;
}

// full[keep[r], :] = compact[r, :]; rows of full not in keep are left as they are.
// compact may be the first rows of full itself (same pointer and stride: in place); the
// pruned rows of full then hold whatever the buffer held there (not their old values).
template <typename T>
void scatter_rows(ConstMatrixView<T> compact, const KeepSet& keep, MatrixView<T> full) {
  static_assert(std::is_trivially_copyable<T>::value, "scatter_rows copies raw rows");
  detail::pruning::check_keep_set(keep, full.rows());
  check::equal("compact", compact.rows(), "rows (kept tokens)", static_cast<std::ptrdiff_t>(keep.size()));
  check::equal("compact", compact.cols(), "cols (dim)", full.cols());
  const bool in_place = compact.data() == full.data();
  ETK_CHECK(!in_place || compact.outerStride() == full.outerStride(),
            "argument 'full' aliases 'compact' with a different row stride");
  const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(full.cols());
  // Last row first: with in-place data, row r moves back to keep[r] >= r without
  // overwriting a row not yet moved.
  for (std::size_t r = keep.size(); r-- > 0;) {
    T* dst = full.data() + keep[r] * full.outerStride();
    const T* src = compact.data() + static_cast<std::ptrdiff_t>(r) * compact.outerStride();
    if (!in_place) std::memcpy(dst, src, bytes);
    else if (src != dst) std::memmove(dst, src, bytes);
  }
}

// The same for any row-major Eigen dense argument with inner stride 1 (Matrix, Map, Ref,
// Block, a mutable matrix_view(...)): compact_rows(x, keep), compact_rows(x, keep, out),
// scatter_rows(compact, keep, full). (Constrained on Eigen types, so explicit calls such
// as compact_rows<float>(view, ...) still pick the overloads above.)
template <typename X>
using if_eigen = std::enable_if_t<std::is_base_of<Eigen::EigenBase<X>, X>::value>;

template <typename X, typename = if_eigen<X>>
RowMatrix<typename X::Scalar> compact_rows(const X& x, const KeepSet& keep) {
  return compact_rows(const_view(x), keep);
}
template <typename X, typename Out, typename = if_eigen<X>>
void compact_rows(const X& x, const KeepSet& keep, Out&& out) {
  compact_rows(const_view(x), keep, mutable_view(out));
}
template <typename X, typename Full, typename = if_eigen<X>>
void scatter_rows(const X& compact, const KeepSet& keep, Full&& full) {
  scatter_rows(const_view(compact), keep, mutable_view(full));
}

// Positions in the original sequence of the rows kept now: out[r] = origin[local[r]],
// where origin maps the current rows to original positions and local indexes current rows.
inline void compose_keep(const KeepSet& origin, const KeepSet& local, KeepSet& out) {
  detail::pruning::check_keep_set(local, static_cast<std::ptrdiff_t>(origin.size()));
  ETK_CHECK(&out != &origin && &out != &local, "argument 'out' aliases an input");
  out.resize(local.size());
  for (std::size_t r = 0; r < local.size(); ++r) out[r] = origin[static_cast<std::size_t>(local[r])];
}

ETK_END_NAMESPACE
