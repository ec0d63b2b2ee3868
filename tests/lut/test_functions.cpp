// Reference functions: values at known points (from closed forms / high-precision
// tables), identities between them, the documented domain behaviour, and names.
#include <catch2/catch.hpp>
#include <etk/lut/functions.hpp>

#include <cmath>
#include <limits>

using namespace etk::lut;

TEST_CASE("functions: known values to 1e-14") {
  // Phi(1) = 0.841344746068542948585..., Phi(-2) = 0.022750131948179207200...
  CHECK(std::abs(evaluate(Function::gelu, 1.0) - 0.8413447460685429486) < 1e-14);
  CHECK(std::abs(evaluate(Function::gelu, -2.0) - (-2.0 * 0.0227501319481792072)) < 1e-14);
  CHECK(std::abs(evaluate(Function::sigmoid, 0.0) - 0.5) < 1e-15);
  CHECK(std::abs(evaluate(Function::silu, 2.0) - 2.0 / (1.0 + std::exp(-2.0))) < 1e-15);
  CHECK(std::abs(evaluate(Function::tanh, 0.5) - 0.46211715726000975850) < 1e-14);
  CHECK(evaluate(Function::exp, 0.0) == 1.0);
  CHECK(evaluate(Function::reciprocal, 4.0) == 0.25);
  CHECK(evaluate(Function::rsqrt, 4.0) == 0.5);
  CHECK(evaluate(Function::hswish, -3.0) == 0.0);
  CHECK(evaluate(Function::hswish, 3.0) == 3.0);
  CHECK(evaluate(Function::hswish, 1.0) == 4.0 / 6.0);
  CHECK(evaluate(Function::hsigmoid, 0.0) == 0.5);
  CHECK(evaluate(Function::hsigmoid, 5.0) == 1.0);
}

TEST_CASE("functions: identities hold and the tanh form of GELU is within 1e-3 of erf") {
  for (double x = -6.0; x <= 6.0; x += 0.0625) {
    CHECK(std::abs(evaluate(Function::silu, x) - x * evaluate(Function::sigmoid, x)) < 1e-15);
    CHECK(std::abs(evaluate(Function::hswish, x) - x * evaluate(Function::hsigmoid, x)) < 1e-15);
    CHECK(std::abs(evaluate(Function::tanh, x) - (2 * evaluate(Function::sigmoid, 2 * x) - 1)) < 1e-15);
    // GELU's tanh approximation is known to be within ~5e-4 of the erf form.
    CHECK(std::abs(evaluate(Function::gelu_tanh, x) - evaluate(Function::gelu, x)) < 1e-3);
  }
}

TEST_CASE("functions: NaN propagates - reciprocal/rsqrt domain edges as the C library") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Function f : kAllFunctions) CHECK(std::isnan(evaluate(f, nan)));
  CHECK(std::isinf(evaluate(Function::reciprocal, 0.0)));
  CHECK(std::isnan(evaluate(Function::rsqrt, -1.0)));
}

TEST_CASE("functions: names round-trip - unknown names are rejected") {
  for (Function f : kAllFunctions) CHECK(function_from_name(name(f)) == f);
  CHECK_THROWS_AS(function_from_name("relu"), etk::invalid_argument);
  CHECK_THROWS_WITH(function_from_name(""), Catch::Contains("'function'"));
}
