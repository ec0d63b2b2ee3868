// Tests of adaptive.hpp: SaiT coverage and fixed-rate top-k on hand-computed scores,
// top-k against its reference twin on random scores with many ties, the run-time
// switchable policy (rate 1 = every token), and bad input.
#include <catch2/catch.hpp>
#include <etk/pruning/adaptive.hpp>
#include <etk/pruning/policy.hpp>
#include <etk/pruning/compact.hpp>
#include <etk/pruning/token_importance.hpp>
#include <etk/pruning/reference/adaptive.hpp>

#include <limits>
#include <random>

using etk::KeepSet;
using etk::SelectionOptions;

TEST_CASE("top-k keeps ceil(rate * n) tokens, protected first, ties to the lower index") {
  Eigen::VectorXf s(6);
  s << 0.1f, 0.3f, 0.05f, 0.3f, 0.2f, 0.05f;
  CHECK(etk::keep_top_k(s, 0.5) == KeepSet{1, 3, 4});
  CHECK(etk::keep_top_k(s, 1.0 / 6) == KeepSet{1});  // tie 0.3 at 1 and 3 -> lower index
  CHECK(etk::keep_top_k(s, 0.01) == KeepSet{1});     // at least one
  CHECK(etk::keep_top_k(s, 1.0) == etk::all_kept(6));
  CHECK(etk::keep_top_k(s, 0.7) == KeepSet{0, 1, 2, 3, 4});  // ceil(4.2) = 5; tie 0.05 -> 2
  Eigen::VectorXf t(10);
  t.setLinSpaced(10, 0.0f, 0.9f);
  CHECK(etk::keep_top_k(t, 0.3) == KeepSet{7, 8, 9});  // 0.3 * 10 counts as 3, not 4
  SelectionOptions o;
  o.protected_indices = {2};
  CHECK(etk::keep_top_k(s, 0.5, o) == KeepSet{1, 2, 3});  // k = 3 includes the protected
  o.protected_indices = {0, 2, 5};
  CHECK(etk::keep_top_k(s, 1.0 / 6, o) == KeepSet{0, 2, 5});  // more protected than k
}

TEST_CASE("top-k (nth_element) matches its sorting reference") {
  std::mt19937 rng(8);
  for (std::ptrdiff_t n : {1, 2, 3, 7, 16, 17, 31, 33, 63, 65, 257})
    for (double rate : {0.05, 0.25, 0.5, 0.77, 1.0}) {
      Eigen::VectorXf s(n);
      for (Eigen::Index j = 0; j < n; ++j) s[j] = static_cast<float>(rng() % 7) / 7.0f;  // many ties
      SelectionOptions o;
      if (n > 3) o.protected_indices = {0, static_cast<etk::TokenIndex>(n - 1)};
      INFO("n " << n << " rate " << rate);
      CHECK(etk::keep_top_k(s, rate, o) == etk::reference::keep_top_k(s, rate, o));
    }
}

TEST_CASE("coverage keeps the smallest set covering the fraction of importance") {
  Eigen::VectorXf s(5);
  s << 0.125f, 0.375f, 0.0625f, 0.25f, 0.1875f;  // dyadic, total exactly 1
  CHECK(etk::keep_coverage(s, 0.375) == KeepSet{1});
  CHECK(etk::keep_coverage(s, 0.5) == KeepSet{1, 3});    // 0.375 < 0.5 <= 0.625
  CHECK(etk::keep_coverage(s, 0.625) == KeepSet{1, 3});  // exactly covered
  CHECK(etk::keep_coverage(s, 0.63) == KeepSet{1, 3, 4});
  CHECK(etk::keep_coverage(s, 1.0) == etk::all_kept(5));  // 1 = no pruning
  SelectionOptions o;
  o.protected_indices = {2};
  CHECK(etk::keep_coverage(s, 0.4375, o) == KeepSet{1, 2});  // 0.0625 + 0.375 covers it
  CHECK(etk::keep_coverage(s, 0.44, o) == KeepSet{1, 2, 3});
  // A peaked input needs fewer tokens than a flat one at the same target: adaptive.
  Eigen::VectorXf flat = Eigen::VectorXf::Constant(8, 0.125f), peak(8);
  peak << 0.8f, 0.05f, 0.05f, 0.02f, 0.02f, 0.02f, 0.02f, 0.02f;
  CHECK(etk::keep_coverage(peak, 0.8).size() == 1);
  CHECK(etk::keep_coverage(flat, 0.8).size() == 8);  // ties with the last admitted kept
  Eigen::VectorXf tie(4);
  tie << 0.25f, 0.5f, 0.125f, 0.125f;
  CHECK(etk::keep_coverage(tie, 0.8) == KeepSet{0, 1, 2, 3});  // 0.875 reached by 2, 3 tied
  Eigen::VectorXf zero = Eigen::VectorXf::Zero(3);
  CHECK(etk::keep_coverage(zero, 0.5) == KeepSet{0});  // nothing needed: one survivor
  SelectionOptions strict;
  strict.all_dropped = etk::AllDropped::error;
  CHECK_THROWS_WITH(etk::keep_coverage(zero, 0.5, strict), Catch::Contains("drop every one"));
}

TEST_CASE("one policy switches modes at run time; rate 1 keeps every token") {
  Eigen::VectorXf s(6);
  s << 0.1f, 0.3f, 0.05f, 0.3f, 0.2f, 0.05f;
  etk::PruningPolicy p;
  KeepSet keep;
  CHECK_FALSE(p.select(s, 0, keep));
  CHECK(keep == etk::all_kept(6));
  p.mode = etk::PruneMode::top_k;
  CHECK_FALSE(p.select(s, 3, keep));  // keep_rate 1
  CHECK(keep == etk::all_kept(6));
  p.keep_rate = 0.5;
  CHECK(p.select(s, 3, keep));
  CHECK(keep == KeepSet{1, 3, 4});
  p.layers = {1};
  CHECK_FALSE(p.select(s, 3, keep));  // not a pruning layer
  CHECK(p.select(s, 1, keep));
  p.mode = etk::PruneMode::coverage;
  p.fraction = 0.5;
  CHECK(p.select(s, 1, keep));
  CHECK(keep == KeepSet{1, 3});
  p.mode = etk::PruneMode::ltp_threshold;
  p.thresholds = {0.0f, 0.15f};
  CHECK_FALSE(p.select(s, 0, keep));
  CHECK(p.select(s, 1, keep));
  CHECK(keep == KeepSet{1, 3, 4});
  CHECK_THROWS_WITH(p.select(s, 2, keep), Catch::Contains("'layer'"));
}

TEST_CASE("adaptive selection rejects bad input") {
  Eigen::VectorXf s(4);
  s << 0.1f, 0.2f, 0.3f, 0.4f;
  for (double bad : {0.0, -0.5, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_WITH(etk::keep_top_k(s, bad), Catch::Contains("'keep_rate'"));
    CHECK_THROWS_WITH(etk::keep_coverage(s, bad), Catch::Contains("'fraction'"));
  }
  SelectionOptions o;
  o.protected_indices = {7};
  CHECK_THROWS_WITH(etk::keep_top_k(s, 0.5, o), Catch::Contains("'protected_indices'"));
  CHECK_THROWS_WITH(etk::keep_coverage(s, 0.5, o), Catch::Contains("'protected_indices'"));
  s[1] = -0.2f;
  CHECK_THROWS_WITH(etk::keep_coverage(s, 0.5), Catch::Contains("negative"));
  s[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::keep_top_k(s, 0.5), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(etk::keep_coverage(s, 0.5), Catch::Contains("non-finite"));
}

TEST_CASE("keep rate 1 through select + compact gives exactly the dense result") {
  // A two-layer toy model: y = tanh(x W1) per layer with attention-derived importance
  // between layers. With rate 1 (or fraction 1, or threshold 0) the policy keeps every
  // token, compaction is a row copy, and the output is bit-identical to the dense run.
  std::mt19937 rng(12);
  const std::ptrdiff_t n = 17, d = 8;
  etk::RowMatrixXf x = etk::RowMatrixXf::Random(n, d), w = etk::RowMatrixXf::Random(d, d);
  auto dense_layer = [&](const etk::RowMatrixXf& in) -> etk::RowMatrixXf { return (in * w).array().tanh().matrix(); };
  const etk::RowMatrixXf dense = dense_layer(dense_layer(x));
  for (etk::PruneMode mode : {etk::PruneMode::dense, etk::PruneMode::top_k, etk::PruneMode::coverage,
                              etk::PruneMode::ltp_threshold}) {
    etk::PruningPolicy p;
    p.mode = mode;
    p.thresholds = {0.0f, 0.0f};
    etk::RowMatrixXf h = dense_layer(x);
    // Importance from the toy's own "attention": softmax of h h^T rows.
    etk::RowMatrixXf a = (h * h.transpose()).array().exp().matrix();
    for (Eigen::Index i = 0; i < n; ++i) a.row(i) /= a.row(i).sum();
    const Eigen::VectorXf s = etk::token_importance(etk::HeadsView<const float>(a.data(), 1, n, n));
    KeepSet keep;
    CHECK_FALSE(p.select(s, 1, keep));
    const etk::RowMatrixXf c = etk::compact_rows<float>(etk::matrix_view(static_cast<const float*>(h.data()), n, d, d), keep);
    const etk::RowMatrixXf out = dense_layer(c);
    CHECK((out.array() == dense.array()).all());
  }
}
