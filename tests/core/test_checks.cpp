// Tests of the shared argument checks: each rejects bad input with etk::invalid_argument
// and a message naming the argument, and accepts good input.
#include <catch2/catch.hpp>
#include <etk/core/checks.hpp>

#include <limits>
#include <vector>

TEST_CASE("positive_finite rejects zero, negatives, NaN and Inf and names the argument") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, nan, inf, -inf}) {
    CHECK_THROWS_WITH(etk::check::positive_finite("scale", bad), Catch::Contains("'scale'"));
    CHECK_THROWS_AS(etk::check::positive_finite("scale", bad), etk::invalid_argument);
  }
  CHECK_NOTHROW(etk::check::positive_finite("scale", 1e-30));
}

TEST_CASE("finite finds a non-finite value and reports where it is") {
  std::vector<float> data(3 * 5, 1.0f);
  CHECK_NOTHROW(etk::check::finite("x", data.data(), 3, 5, 5));
  data[2 * 5 + 3] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(etk::check::finite("x", data.data(), 3, 5, 5),
                    Catch::Contains("row 2") && Catch::Contains("column 3"));
  // A stride that skips the bad value does not see it.
  data.assign(3 * 6, 1.0f);
  data[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_NOTHROW(etk::check::finite("x", data.data(), 3, 5, 6));
}

TEST_CASE("heads_layout rejects empty and overlapping layouts") {
  std::vector<float> buf(2 * 3 * 4);
  etk::HeadsView<const float> ok(buf.data(), 2, 3, 4);
  CHECK_NOTHROW(etk::check::heads_layout("q", ok));
  CHECK_THROWS_WITH(etk::check::heads_layout("q", etk::HeadsView<const float>(buf.data(), 0, 3, 4)),
                    Catch::Contains("head"));
  CHECK_THROWS_WITH(etk::check::heads_layout("k", etk::HeadsView<const float>(buf.data(), 2, 0, 4)),
                    Catch::Contains("empty sequence"));
  CHECK_THROWS_WITH(etk::check::heads_layout("v", etk::HeadsView<const float>(buf.data(), 2, 3, 0)),
                    Catch::Contains("dim"));
  CHECK_THROWS_WITH(
      etk::check::heads_layout("q", etk::HeadsView<const float>(buf.data(), 2, 3, 4, 4, 8)),
      Catch::Contains("overlaps"));
}

TEST_CASE("bits_in_range accepts the range and rejects outside it") {
  CHECK_NOTHROW(etk::check::bits_in_range("bits", 2, 2, 8));
  CHECK_NOTHROW(etk::check::bits_in_range("bits", 8, 2, 8));
  CHECK_THROWS_WITH(etk::check::bits_in_range("bits", 1, 2, 8), Catch::Contains("'bits'"));
  CHECK_THROWS_WITH(etk::check::bits_in_range("bits", 9, 2, 8), Catch::Contains("got 9"));
}
