// Tests of etk/pruning/policy.hpp (on main PruningPolicy lived in the SaiT header,
// adaptive.hpp): each mode selects what its own function selects, dense keeps all.
#include <catch2/catch.hpp>
#include <etk/pruning/policy.hpp>

TEST_CASE("PruningPolicy dispatches to the selection of its mode") {
  Eigen::VectorXf s(6);
  s << 0.05f, 0.3f, 0.1f, 0.25f, 0.2f, 0.1f;
  etk::KeepSet keep;
  etk::PruningPolicy p;
  CHECK_FALSE(p.select(s, 0, keep));
  CHECK(keep.size() == 6);
  p.mode = etk::PruneMode::ltp_threshold;
  p.thresholds = {0.15f};
  CHECK(p.select(s, 0, keep));
  CHECK(keep == etk::ltp_keep(s, 0.15));
  p.mode = etk::PruneMode::top_k;
  p.keep_rate = 0.5;
  CHECK(p.select(s, 0, keep));
  CHECK(keep == etk::keep_top_k(s, 0.5));
  p.mode = etk::PruneMode::coverage;
  p.fraction = 0.5;
  CHECK(p.select(s, 0, keep));
  CHECK(keep == etk::keep_coverage(s, 0.5));
  p.mode = etk::PruneMode::ltp_threshold;
  CHECK_THROWS_WITH(p.select(s, 3, keep), Catch::Contains("layer"));
}
