// Tests of etk/core/span.hpp: a Span views (never copies) a std::vector, a std::array, an
// Eigen vector, Map, Ref or contiguous Block, a braced list and pointer + size; a strided
// Eigen vector is rejected with a clear error instead of being read wrongly. On main a
// Span could not be made from a std::array, a Map, a Ref or a Block.
#include <catch2/catch.hpp>
#include <etk/core/span.hpp>

#include <array>
#include <vector>

namespace {
std::ptrdiff_t size_of(etk::Span<float> s) { return s.size(); }
const float* data_of(etk::Span<float> s) { return s.data(); }
float sum(etk::Span<float> s) {
  float t = 0;
  for (float v : s) t += v;
  return t;
}
}  // namespace

TEST_CASE("Span views every contiguous container without a copy") {
  const std::vector<float> v{1, 2, 3};
  const std::array<float, 4> a{1, 2, 3, 4};
  Eigen::VectorXf e(5);
  e << 1, 2, 3, 4, 5;
  const Eigen::RowVectorXf r = e.transpose();
  const Eigen::Map<const Eigen::VectorXf> m(e.data(), 3);
  const Eigen::Ref<const Eigen::VectorXf> ref(e);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> mat(3, 4);
  mat.setConstant(2.0f);
  CHECK(data_of(v) == v.data());
  CHECK(size_of(v) == 3);
  CHECK(data_of(a) == a.data());
  CHECK(size_of(a) == 4);
  CHECK(data_of(e) == e.data());
  CHECK(data_of(r) == r.data());
  CHECK(data_of(m) == e.data());
  CHECK(size_of(m) == 3);
  CHECK(data_of(ref) == e.data());
  CHECK(data_of(e.segment(1, 3)) == e.data() + 1);
  CHECK(data_of(mat.row(1)) == mat.data() + 4);  // a row of a row-major matrix is contiguous
  CHECK(sum(mat.row(2)) == 8.0f);
  CHECK(sum({1.0f, 2.5f}) == 3.5f);
  CHECK(size_of({}) == 0);
  CHECK(size_of(etk::Span<float>(v.data() + 1, 2)) == 2);
  CHECK(sum(e) == 15.0f);
}

TEST_CASE("Span rejects a strided Eigen vector") {
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> mat(3, 4);
  mat.setZero();
  CHECK_THROWS_WITH(size_of(mat.col(1)), Catch::Contains("inner stride"));
  CHECK(size_of(mat.col(1).head(1)) == 1);  // one value: no stride to get wrong
}
