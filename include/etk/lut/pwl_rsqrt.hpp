// etk/lut/pwl_rsqrt.hpp: 1/sqrt(x) over every positive float from a table fitted on [1, 4).
//
// LayerNorm needs 1/sqrt(var + eps) over many decades, but a piecewise-linear table is
// fitted on one short range. Hardware and the GQA-LUT paper reduce the argument by its
// float exponent: x = m * 4^e with m in [1, 4) and e an integer, so
//     rsqrt(x) = rsqrt(m) * 2^-e,
// and only rsqrt(m) comes from the table. Both scalings are by powers of two and exact
// (for every positive float, denormals included: |e| <= 75, so 2^-e * table(m) stays a
// normal float), hence the relative error at x is the table's relative error at m.
//
// Inputs must be positive and finite (the LayerNorm argument var + eps is); 0, negatives,
// NaN and Inf are rejected with etk::invalid_argument, as is a table whose fitted range
// does not cover [1, 4).
#pragma once

#include <cmath>
#include <cstddef>

#include "etk/config.hpp"
#include "etk/lut/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

// y[i] = table(m_i) * 2^-e_i for x[i] = m_i * 4^e_i, m_i in [1, 4). x and y may alias.
inline void pwl_rsqrt(const PwlTable& table, const float* x, float* y, std::ptrdiff_t n) {
  ETK_CHECK(n >= 0, "argument 'n' must be >= 0, got " << n);
  ETK_CHECK(n == 0 || (x != nullptr && y != nullptr), "argument 'x'/'y' is a null pointer");
  ETK_CHECK(table.lo() <= 1.0 && table.hi() >= 4.0,
            "argument 'table': fitted on [" << table.lo() << ", " << table.hi()
            << "), which does not cover the reduced range [1, 4)");
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = x[i];
    ETK_CHECK(v > 0.0f && std::isfinite(v),
              "argument 'x': rsqrt needs positive finite inputs, got " << v << " at " << i);
    int e2 = 0;
    const float f = std::frexp(v, &e2);  // v = f * 2^e2, f in [0.5, 1)
    // v = m * 4^e: with e2 - 1 = 2e + r (r in {0, 1}), m = f * 2^(1 + r) lies in [1, 4).
    const int r = (e2 - 1) & 1;
    const int e = (e2 - 1 - r) / 2;
    const float m = std::ldexp(f, 1 + r);
    y[i] = std::ldexp(table(m), -e);
  }
}

}  // namespace lut
ETK_END_NAMESPACE
