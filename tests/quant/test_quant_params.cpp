// QuantParams' constructors and stack follow the one error policy: bad bit widths, NaN or
// infinite ranges and malformed per-channel entries give etk::invalid_argument naming
// the argument (never an undefined shift, a NaN converted to int, or std::out_of_range).
#include <catch2/catch.hpp>
#include <etk/quant/quant_params.hpp>

#include <limits>
#include <vector>

using etk::QuantParams;

TEST_CASE("quant params: symmetric and from_range accept exactly the widths the kernels accept") {
  for (int b : {0, -1, 33, 1, 9, 15, 17, 31, 64}) {
    INFO("bits " << b);
    CHECK_THROWS_WITH(QuantParams::symmetric(1.0f, b), Catch::Contains("'bits'"));
    CHECK_THROWS_WITH(QuantParams::symmetric(1.0f, b, false), Catch::Contains("'bits'"));
    CHECK_THROWS_WITH(QuantParams::from_range(-1.0f, 1.0f, b, true), Catch::Contains("'bits'"));
    CHECK_THROWS_WITH(QuantParams::from_range(-1.0f, 1.0f, b, false), Catch::Contains("'bits'"));
  }
  for (int b : {2, 3, 4, 5, 6, 7, 8, 16})
    for (bool s : {true, false}) {
      INFO("bits " << b << " signed " << s);
      CHECK_NOTHROW(etk::check::quant_params("p", QuantParams::symmetric(3.0f, b, s)));
      CHECK_NOTHROW(etk::check::quant_params("p", QuantParams::from_range(-1.0f, 3.0f, b, s)));
    }
}

TEST_CASE("quant params: NaN and infinite ranges are rejected, extreme finite ones give a valid grid") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float big = std::numeric_limits<float>::max();
  CHECK_THROWS_WITH(QuantParams::symmetric(nan, 8), Catch::Contains("'max_abs'"));
  CHECK_THROWS_WITH(QuantParams::symmetric(inf, 8), Catch::Contains("'max_abs'"));
  CHECK_THROWS_WITH(QuantParams::from_range(nan, 1.0f, 8, true), Catch::Contains("'lo'/'hi'"));
  CHECK_THROWS_WITH(QuantParams::from_range(0.0f, nan, 8, true), Catch::Contains("'lo'/'hi'"));
  CHECK_THROWS_WITH(QuantParams::from_range(0.0f, inf, 8, false), Catch::Contains("'lo'/'hi'"));
  CHECK_THROWS_WITH(QuantParams::from_range(-inf, 0.0f, 8, false), Catch::Contains("'lo'/'hi'"));
  CHECK_THROWS_WITH(QuantParams::from_range(2.0f, 1.0f, 8, false), Catch::Contains("lo <= hi"));
  for (int b : {2, 8, 16}) {
    CHECK_NOTHROW(etk::check::quant_params("p", QuantParams::symmetric(big, b)));
    CHECK_NOTHROW(etk::check::quant_params("p", QuantParams::from_range(-big, big, b, false)));
    CHECK_NOTHROW(etk::check::quant_params("p", QuantParams::from_range(-big, big, b, true)));
  }
}

TEST_CASE("quant params: stack rejects malformed entries with etk::invalid_argument") {
  QuantParams empty_scale = QuantParams::symmetric(1.0f, 8);
  empty_scale.scale.clear();
  CHECK_THROWS_AS(QuantParams::stack({QuantParams::symmetric(1.0f, 8), empty_scale}, 0), etk::invalid_argument);
  CHECK_THROWS_WITH(QuantParams::stack({QuantParams::symmetric(1.0f, 8), empty_scale}, 0),
                    Catch::Contains("entry 1"));
  QuantParams two = QuantParams::symmetric(1.0f, 8);
  two.scale.push_back(2.0f);
  two.zero_point.push_back(0);
  CHECK_THROWS_WITH(QuantParams::stack({two}, 1), Catch::Contains("per-tensor"));
  CHECK_THROWS_WITH(QuantParams::stack({QuantParams::symmetric(1.0f, 8), QuantParams::symmetric(1.0f, 4)}, 0),
                    Catch::Contains("differs"));
  CHECK_THROWS_WITH(QuantParams::stack({QuantParams::symmetric(1.0f, 8)}, -1), Catch::Contains("'axis'"));
  const QuantParams ok = QuantParams::stack({QuantParams::symmetric(1.0f, 8), QuantParams::symmetric(2.0f, 8)}, 0);
  CHECK(ok.scale.size() == 2);
  CHECK(ok.scale[1] == QuantParams::symmetric(2.0f, 8).scale[0]);
}
