// Tests of compact.hpp: compaction and scatter against the reference twin, the exact
// round trip, in-place use, composition of index maps across layers, and bad input.
#include <catch2/catch.hpp>
#include <etk/pruning/compact.hpp>
#include <etk/pruning/reference/compact.hpp>

#include <random>

using etk::KeepSet;
using etk::RowMatrixXf;
using etk::matrix_view;

namespace {
etk::ConstMatrixView<float> cview(const float* p, std::ptrdiff_t r, std::ptrdiff_t c, std::ptrdiff_t s) {
  return etk::matrix_view(p, r, c, s);
}

KeepSet random_keep(std::ptrdiff_t n, std::mt19937& rng) {
  KeepSet k;
  for (std::ptrdiff_t j = 0; j < n; ++j)
    if (rng() % 3 != 0) k.push_back(static_cast<etk::TokenIndex>(j));
  if (k.empty()) k.push_back(static_cast<etk::TokenIndex>(rng() % n));
  return k;
}
}  // namespace

TEST_CASE("compact then scatter round-trips the kept rows exactly") {
  std::mt19937 rng(1);
  for (std::ptrdiff_t seq : {1, 2, 3, 7, 16, 17, 31, 33, 63, 65})
    for (std::ptrdiff_t dim : {1, 5, 16, 17, 64}) {
      const std::ptrdiff_t stride = dim + (seq % 2);  // padded rows too
      RowMatrixXf buf = RowMatrixXf::Random(seq, stride);
      const auto x = cview(buf.data(), seq, dim, stride);
      const KeepSet keep = random_keep(seq, rng);
      const RowMatrixXf c = etk::compact_rows<float>(x, keep);
      const RowMatrixXf cr = etk::reference::compact_rows<float>(x, keep);
      REQUIRE(c.rows() == static_cast<Eigen::Index>(keep.size()));
      CHECK((c.array() == cr.array()).all());  // bit-exact copies
      // Transform the compact rows, scatter back: kept rows updated, pruned rows frozen.
      const RowMatrixXf y = c * 2.0f;
      RowMatrixXf full = buf, full_ref = buf;
      etk::scatter_rows<float>(cview(y.data(), y.rows(), dim, dim), keep,
                               matrix_view(full.data(), seq, dim, stride));
      etk::reference::scatter_rows<float>(cview(y.data(), y.rows(), dim, dim), keep,
                                          matrix_view(full_ref.data(), seq, dim, stride));
      CHECK((full.array() == full_ref.array()).all());
      std::size_t r = 0;
      for (std::ptrdiff_t j = 0; j < seq; ++j) {
        const bool kept = r < keep.size() && keep[r] == j;
        for (std::ptrdiff_t d = 0; d < dim; ++d)
          CHECK(full(j, d) == (kept ? 2.0f * buf(j, d) : buf(j, d)));
        if (kept) ++r;
      }
      // Plain round trip: scatter(compact(x)) == x on kept rows, exactly.
      RowMatrixXf back = RowMatrixXf::Zero(seq, stride);
      etk::scatter_rows<float>(cview(c.data(), c.rows(), dim, dim), keep,
                               matrix_view(back.data(), seq, dim, stride));
      for (etk::TokenIndex j : keep) CHECK((back.row(j).head(dim).array() == buf.row(j).head(dim).array()).all());
    }
}

TEST_CASE("in-place compaction and scatter") {
  std::mt19937 rng(2);
  const std::ptrdiff_t seq = 33, dim = 17;
  RowMatrixXf buf = RowMatrixXf::Random(seq, dim);
  const RowMatrixXf orig = buf;
  const KeepSet keep = random_keep(seq, rng);
  const auto n = static_cast<std::ptrdiff_t>(keep.size());
  etk::compact_rows<float>(cview(buf.data(), seq, dim, dim), keep,
                           matrix_view(buf.data(), n, dim, dim));
  for (std::ptrdiff_t r = 0; r < n; ++r) CHECK((buf.row(r).array() == orig.row(keep[r]).array()).all());
  etk::scatter_rows<float>(cview(buf.data(), n, dim, dim), keep,
                           matrix_view(buf.data(), seq, dim, dim));
  for (etk::TokenIndex j : keep) CHECK((buf.row(j).array() == orig.row(j).array()).all());
}

TEST_CASE("index maps compose across layers") {
  const KeepSet layer1 = {0, 2, 3, 5, 8};  // original positions alive after layer 1
  const KeepSet local = {1, 2, 4};         // rows of the compact buffer kept at layer 2
  KeepSet out;
  etk::compose_keep(layer1, local, out);
  CHECK(out == KeepSet{2, 3, 8});
  CHECK_THROWS_WITH(etk::compose_keep(layer1, {1, 5}, out), Catch::Contains("'keep'"));
  CHECK(etk::all_kept(3) == KeepSet{0, 1, 2});
  CHECK_THROWS_WITH(etk::all_kept(0), Catch::Contains("'n'"));
}

TEST_CASE("compaction rejects bad index maps and shapes") {
  RowMatrixXf x = RowMatrixXf::Random(5, 4), out(2, 4), bad(3, 4);
  const auto xv = cview(x.data(), 5, 4, 4);
  auto ov = matrix_view(out.data(), 2, 4, 4);
  CHECK_NOTHROW(etk::compact_rows<float>(xv, {1, 3}, ov));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {}, ov), Catch::Contains("'keep'") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {3, 1}, ov), Catch::Contains("ascending"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {1, 1}, ov), Catch::Contains("ascending"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {1, 5}, ov), Catch::Contains("outside [0, 5)"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {-1, 2}, ov), Catch::Contains("outside"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {1, 2}, matrix_view(bad.data(), 3, 4, 4)), Catch::Contains("'out'"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {1, 2}, matrix_view(bad.data(), 2, 3, 4)), Catch::Contains("'out'"));
  CHECK_THROWS_WITH(etk::scatter_rows<float>(cview(out.data(), 2, 4, 4), {1, 2, 3},
                                             matrix_view(x.data(), 5, 4, 4)),
                    Catch::Contains("'compact'"));
  CHECK_THROWS_WITH(etk::compact_rows<float>(xv, {1, 2}, matrix_view(x.data(), 2, 4, 8)), Catch::Contains("aliases"));
}
