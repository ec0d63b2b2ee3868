// Tests of token_merging.hpp: a hand-computed bipartite matching and size-weighted merge
// (protected class token, ties), the fast similarity path against the double reference on
// random inputs with a safe similarity margin, unmerge, and bad input.
// etk:isa-variants
#include <catch2/catch.hpp>
#include <etk/pruning/reference/token_merging.hpp>
#include <etk/pruning/token_merging.hpp>

#include <limits>
#include <random>

using etk::KeepSet;
using etk::MergeOptions;
using etk::MergeResult;
using etk::RowMatrixXf;

namespace {
etk::ConstMatrixView<float> cview(const RowMatrixXf& m) { return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols()); }
}  // namespace

TEST_CASE("ToMe merge on a hand-computed example") {
  RowMatrixXf metric(5, 2), x(5, 1);
  metric << 1, 0,  1, 0,  0, 1,  0, 1,  1, 1;
  x << 10, 20, 30, 40, 50;
  Eigen::VectorXf size(5);
  size << 1, 1, 2, 1, 3;
  MergeOptions o;
  o.protected_indices = {0};  // CLS: in set A, would match token 1 with similarity 1
  MergeResult<float> r;
  o.r = 1;  // A = {0, 2, 4}, B = {1, 3}; best: 2 -> 3 (cos 1), 4 -> 1 (cos .707, tie with 3)
  etk::tome_merge<float>(cview(metric), cview(x), size, o, r);
  CHECK(r.merged == 1);
  CHECK(r.kept == KeepSet{0, 1, 3, 4});
  CHECK(r.source == std::vector<etk::TokenIndex>{0, 1, 2, 2, 3});
  CHECK(r.x(2, 0) == Approx((2 * 30.0 + 40.0) / 3));
  CHECK(r.size[2] == 3.0f);
  o.r = 2;
  etk::tome_merge<float>(cview(metric), cview(x), size, o, r);
  CHECK(r.kept == KeepSet{0, 1, 3});
  CHECK(r.x(0, 0) == 10.0f);  // CLS untouched
  CHECK(r.x(1, 0) == Approx((20.0 + 3 * 50.0) / 4));
  CHECK(r.size[1] == 4.0f);
  o.r = 10;  // clamped: only 2 A tokens can merge
  etk::tome_merge<float>(cview(metric), cview(x), size, o, r);
  CHECK(r.merged == 2);
  // Protecting token 1 (in B) stops it absorbing: 4 goes to 3 instead.
  o.protected_indices = {0, 1};
  etk::tome_merge<float>(cview(metric), cview(x), size, o, r);
  CHECK(r.kept == KeepSet{0, 1, 3});
  CHECK(r.x(2, 0) == Approx((2 * 30.0 + 40.0 + 3 * 50.0) / 6));
  CHECK(r.size[2] == 6.0f);
  // Unprotected CLS would merge into token 1 (cosine 1 beats 4's 0.707 in the ranking).
  o.protected_indices = {};
  o.r = 1;
  etk::tome_merge<float>(cview(metric), cview(x), Eigen::VectorXf(), o, r);
  CHECK(r.kept == KeepSet{1, 2, 3, 4});  // 0 -> 1 (cos 1, lower A index than 2 -> 3)
  CHECK(r.x(0, 0) == 15.0f);
  // r = 0 keeps everything.
  o.r = 0;
  etk::tome_merge<float>(cview(metric), cview(x), size, o, r);
  CHECK(r.kept == etk::all_kept(5));
  CHECK((r.x.array() == x.array()).all());
}

TEST_CASE("fast ToMe matches the reference where the matching is unambiguous") {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd;
  int compared = 0, total = 0;
  for (std::ptrdiff_t n : {1, 2, 3, 7, 16, 17, 31, 33, 63, 65})
    for (std::ptrdiff_t c : {3, 16, 33})
      for (std::ptrdiff_t r : {std::ptrdiff_t(1), n / 4, n / 2}) {
        ++total;
        RowMatrixXf metric(n, c), x(n, 9);
        for (Eigen::Index i = 0; i < metric.size(); ++i) metric.data()[i] = nd(rng);
        for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
        Eigen::VectorXf size = (Eigen::VectorXf::Random(n).array() + 2.0f).matrix();
        MergeOptions o;
        o.r = r;
        o.protected_indices = {0};
        // Margin check on the exact similarities: the fast path computes each cosine in
        // float with error about (c + 4) u <= 1e-5 (dot of unit vectors, c terms, plus the
        // normalisations); a decision is safe if the competing values differ by > 1e-4.
        std::vector<std::vector<double>> sim((n + 1) / 2, std::vector<double>(n / 2));
        bool safe = true;
        std::vector<double> best;
        for (std::ptrdiff_t a = 1; a < (n + 1) / 2; ++a) {
          std::vector<double> row;
          for (std::ptrdiff_t b = 0; b < n / 2; ++b) {
            const Eigen::VectorXd u = metric.row(2 * a).cast<double>(), v = metric.row(2 * b + 1).cast<double>();
            row.push_back(u.dot(v) / (u.norm() * v.norm()));
          }
          std::sort(row.rbegin(), row.rend());
          if (row.size() > 1 && row[0] - row[1] <= 1e-4) safe = false;
          if (!row.empty()) best.push_back(row[0]);
        }
        std::sort(best.rbegin(), best.rend());
        for (std::size_t k = 0; k + 1 < best.size(); ++k)
          if (best[k] - best[k + 1] <= 1e-4) safe = false;
        if (!safe) continue;
        ++compared;
        MergeResult<float> fast, ref;
        etk::tome_merge<float>(cview(metric), cview(x), size, o, fast);
        etk::reference::tome_merge<float>(cview(metric), cview(x), size, o, ref);
        INFO("n " << n << " c " << c << " r " << r);
        CHECK(fast.kept == ref.kept);
        CHECK(fast.source == ref.source);
        // Same merge code on the same matches: identical arithmetic, identical values.
        CHECK((fast.x.array() == ref.x.array()).all());
        CHECK((fast.size.array() == ref.size.array()).all());
        const std::ptrdiff_t eligible = n / 2 > 0 ? (n + 1) / 2 - 1 : 0;  // A minus the CLS
        CHECK(fast.merged == std::min(r, eligible));
      }
  CHECK(compared >= total / 2);  // the margin filter must leave most cases in
}

TEST_CASE("merged sizes and weighted means conserve the mass of the tokens") {
  std::mt19937 rng(6);
  std::normal_distribution<float> nd;
  const std::ptrdiff_t n = 33;
  RowMatrixXf metric(n, 8), x(n, 5);
  for (Eigen::Index i = 0; i < metric.size(); ++i) metric.data()[i] = nd(rng);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
  MergeOptions o;
  o.r = 12;
  MergeResult<float> m;
  etk::tome_merge<float>(cview(metric), cview(x), Eigen::VectorXf(), o, m);
  REQUIRE(m.x.rows() == n - 12);
  CHECK(m.size.sum() == float(n));
  // sum of size * x is preserved: each output row is a size-weighted mean.
  const Eigen::RowVectorXf before = x.colwise().sum();
  const Eigen::RowVectorXf after = (m.x.array().colwise() * m.size.array()).colwise().sum();
  // |error| <= n * a few ulps of the largest partial sum (|x| < 5, n = 33): 1e-3 is safe.
  CHECK((before - after).cwiseAbs().maxCoeff() <= 1e-3f);
  // Unmerge gives every position the value of the token it joined.
  RowMatrixXf full(n, 5);
  etk::unmerge_rows<float>(cview(m.x), m.source, etk::matrix_view(full.data(), n, 5, 5));
  for (std::ptrdiff_t i = 0; i < n; ++i) CHECK((full.row(i).array() == m.x.row(m.source[i]).array()).all());
}

TEST_CASE("ToMe rejects bad input") {
  RowMatrixXf metric = RowMatrixXf::Random(4, 3), x = RowMatrixXf::Random(4, 2);
  MergeOptions o;
  MergeResult<float> r;
  o.r = -1;
  CHECK_THROWS_WITH(etk::tome_merge<float>(cview(metric), cview(x), Eigen::VectorXf(), o, r), Catch::Contains("'r'"));
  o.r = 1;
  o.protected_indices = {4};
  CHECK_THROWS_WITH(etk::tome_merge<float>(cview(metric), cview(x), Eigen::VectorXf(), o, r),
                    Catch::Contains("'protected_indices'"));
  o.protected_indices = {};
  RowMatrixXf short_metric = RowMatrixXf::Random(3, 3);
  CHECK_THROWS_WITH(etk::tome_merge<float>(cview(short_metric), cview(x), Eigen::VectorXf(), o, r),
                    Catch::Contains("'metric'"));
  Eigen::VectorXf size(4);
  size << 1, 0, 1, 1;
  CHECK_THROWS_WITH(etk::tome_merge<float>(cview(metric), cview(x), size, o, r), Catch::Contains("'size'"));
  metric(2, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::tome_merge<float>(cview(metric), cview(x), Eigen::VectorXf(), o, r),
                    Catch::Contains("'metric'"));
  RowMatrixXf full(3, 2);
  CHECK_THROWS_WITH(etk::unmerge_rows<float>(cview(x), {0, 1, 5}, etk::matrix_view(full.data(), 3, 2, 2)),
                    Catch::Contains("'source'"));
}
