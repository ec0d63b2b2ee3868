// Tests of etk/core/tensor_view.hpp's views of Eigen objects: const_view / mutable_view
// of a RowMajor Matrix, a Map, a Ref and a Block alias the same memory (no copy), and the
// pruning kernels deduce their types from any of them (on main compact_rows(x, keep) and
// compact_rows(matrix_view(...), keep) did not compile).
#include <catch2/catch.hpp>
#include <cstdint>
#include <etk/core/tensor_view.hpp>
#include <etk/pruning/compact.hpp>

TEST_CASE("views of Eigen objects alias their memory") {
  etk::RowMatrixXf x(6, 5);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = float(i);
  const auto v = etk::const_view(x);
  CHECK(v.data() == x.data());
  CHECK(v.outerStride() == 5);
  const auto b = etk::const_view(x.block(1, 2, 3, 2));
  CHECK(b.data() == &x(1, 2));
  CHECK(b.outerStride() == 5);
  CHECK(b(2, 1) == x(3, 3));
  Eigen::Ref<const etk::RowMatrixXf> r(x);
  CHECK(etk::const_view(r).data() == x.data());
  auto m = etk::mutable_view(x);
  m(0, 0) = -1.0f;
  CHECK(x(0, 0) == -1.0f);
  auto row = etk::const_view(x.row(4));
  CHECK(row.rows() == 1);
  CHECK(row(0, 3) == x(4, 3));
}

TEST_CASE("compact_rows and scatter_rows take any row-major Eigen argument") {
  etk::RowMatrixXf x(7, 3);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = float(i);
  const etk::KeepSet keep{1, 4, 6};
  const etk::RowMatrixXf a = etk::compact_rows(x, keep);
  const etk::RowMatrixXf b = etk::compact_rows(etk::matrix_view(x.data(), 7, 3, 3), keep);
  const etk::RowMatrixXf c = etk::compact_rows(Eigen::Ref<const etk::RowMatrixXf>(x), keep);
  const etk::RowMatrixXf d = etk::compact_rows(x.rightCols(2), keep);
  for (std::size_t r = 0; r < keep.size(); ++r) {
    CHECK((a.row(Eigen::Index(r)).array() == x.row(keep[r]).array()).all());
    CHECK((d.row(Eigen::Index(r)).array() == x.row(keep[r]).tail(2).array()).all());
  }
  CHECK((a.array() == b.array()).all());
  CHECK((a.array() == c.array()).all());
  etk::RowMatrixXf full = etk::RowMatrixXf::Zero(7, 3), out(3, 3);
  etk::compact_rows(x, keep, out);
  etk::scatter_rows(out, keep, full);
  CHECK((full.row(4).array() == x.row(4).array()).all());
  CHECK((full.row(0).array() == 0.0f).all());
  etk::RowMatrixXf full2 = etk::RowMatrixXf::Zero(7, 3);
  etk::scatter_rows(out, keep, etk::matrix_view(full2.data(), 7, 3, 3));
  CHECK((full2.array() == full.array()).all());
}

// The dense HeadsView constructor computes head_stride = seq * dim; on main a product
// beyond PTRDIFF_MAX overflowed (UB, UBSan report) before any check saw the view.
TEST_CASE("dense heads view rejects a seq x dim that overflows an index") {
  float x = 0.0f;
  const std::ptrdiff_t big = std::ptrdiff_t(1) << 40;
  CHECK_THROWS_AS(etk::heads_view(&x, 1, big, big), etk::invalid_argument);
  CHECK_THROWS_AS(etk::HeadsView<const float>(&x, 2, -big, big), etk::invalid_argument);
  CHECK_THROWS_AS(etk::heads_view(&x, 1, PTRDIFF_MAX, 2), etk::invalid_argument);
  const auto v = etk::heads_view(&x, 3, big, 4);  // representable: accepted as given
  CHECK(v.head_stride == big * 4);
  CHECK(v.row_stride == 4);
  CHECK(etk::heads_view(&x, 1, PTRDIFF_MAX, 1).head_stride == PTRDIFF_MAX);
}
