// etk/lut/functions.hpp: the non-linear functions GQA-LUT tables approximate, in double.
//
// These are the ground truth every table is fitted against and measured by, so they are
// written for accuracy, not speed: each is evaluated in double with the C library's
// erf/tanh/exp/sqrt (correctly rounded or within 1-2 ulp on glibc), i.e. relative error
// below about 1e-15, far under the ~1e-3..1e-6 error of any table. HSwish and HSigmoid
// are exact piecewise formulas. Names follow the reference code where it has one.
//
// Domain: reciprocal and rsqrt need x > 0 (they return +inf at 0 and NaN below, as the
// C library does). NaN in gives NaN out for every function.
#pragma once

#include <cmath>
#include <string>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

enum class Function {
  gelu,        // x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh,   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  hswish,      // x * relu6(x + 3) / 6
  hsigmoid,    // relu6(x + 3) / 6
  silu,        // x * sigmoid(x) (swish)
  sigmoid,     // 1 / (1 + exp(-x))
  tanh,        // tanh(x)
  exp,         // exp(x)
  reciprocal,  // 1 / x
  rsqrt,       // 1 / sqrt(x)
};

inline constexpr Function kAllFunctions[] = {
    Function::gelu, Function::gelu_tanh, Function::hswish,     Function::hsigmoid,
    Function::silu, Function::sigmoid,   Function::tanh,       Function::exp,
    Function::reciprocal, Function::rsqrt};

// min(max(v, 0), 6), keeping NaN (std::fmin/fmax would drop it).
inline double relu6(double v) { return v < 0.0 ? 0.0 : (v > 6.0 ? 6.0 : v); }

inline double evaluate(Function f, double x) {
  switch (f) {
    case Function::gelu:
      return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440));
    case Function::gelu_tanh: {
      const double k = 0.79788456080286535588;  // sqrt(2 / pi)
      return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
    }
    case Function::hswish:
      return x * relu6(x + 3.0) / 6.0;
    case Function::hsigmoid:
      return relu6(x + 3.0) / 6.0;
    case Function::silu:
      return x / (1.0 + std::exp(-x));
    case Function::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Function::tanh:
      return std::tanh(x);
    case Function::exp:
      return std::exp(x);
    case Function::reciprocal:
      return 1.0 / x;
    case Function::rsqrt:
      return 1.0 / std::sqrt(x);
  }
  return x;  // unreachable: every enumerator is handled above
}

inline const char* name(Function f) {
  switch (f) {
    case Function::gelu: return "gelu";
    case Function::gelu_tanh: return "gelu_tanh";
    case Function::hswish: return "hswish";
    case Function::hsigmoid: return "hsigmoid";
    case Function::silu: return "silu";
    case Function::sigmoid: return "sigmoid";
    case Function::tanh: return "tanh";
    case Function::exp: return "exp";
    case Function::reciprocal: return "reciprocal";
    case Function::rsqrt: return "rsqrt";
  }
  return "?";
}

// The function called `text` ("swish" is accepted for silu); anything else is rejected.
inline Function function_from_name(const std::string& text) {
  if (text == "swish") return Function::silu;
  for (Function f : kAllFunctions)
    if (text == name(f)) return f;
  ETK_THROW("argument 'function': unsupported function name '"
            << text << "' (supported: gelu, gelu_tanh, hswish, hsigmoid, silu/swish, "
               "sigmoid, tanh, exp, reciprocal, rsqrt)");
}

// The input range the reference code (and etk's shipped tables) use for each function.
struct Range {
  double lo;
  double hi;
};
inline Range default_range(Function f) {
  switch (f) {
    case Function::exp: return {-8.0, 0.0};
    case Function::reciprocal: return {0.5, 4.0};
    case Function::rsqrt: return {0.25, 4.0};
    default: return {-4.0, 4.0};
  }
}

// Where the outer segments' secants are anchored (the reference's "neg_inf/pos_inf"):
// far outside the range for functions that become linear there (so the outer lines tend
// to the asymptotes 0 and x), at the range ends otherwise.
inline Range secant_anchors(Function f, Range r) {
  switch (f) {
    case Function::gelu:
    case Function::gelu_tanh:
    case Function::hswish:
    case Function::silu:
    case Function::hsigmoid:
    case Function::sigmoid:
    case Function::tanh:
      return {-1e4, 1e4};
    case Function::exp:  // the reference anchors exp on [-8, 0] at -16 and 0
      return {r.lo - (r.hi - r.lo), r.hi};
    default:
      return r;
  }
}

}  // namespace lut
ETK_END_NAMESPACE
