// etk/lut/table_set.hpp: the tables GQA-LUT ships for one function and segment count.
//
// A TableSet holds a float table fitted on the dense grid (for float engines) and one
// table per input scale 2^-j fitted on that scale's int8 inputs with its breakpoints on
// the 2^-j grid (for integer engines; quantize_pwl(for_scale(j), {j, coeff, ...})).
// Every coefficient is representable in `coeff`, so the integer path is exact.
#pragma once

#include <string>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/fixed_point.hpp"
#include "etk/lut/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

struct TableSet {
  std::string function;
  int segments;
  FixedFormat coeff;
  PwlTable dense;
  int min_frac_bits;
  std::vector<PwlTable> scales;  // scales[j - min_frac_bits]

  int max_frac_bits() const { return min_frac_bits + static_cast<int>(scales.size()) - 1; }
  const PwlTable& for_scale(int j) const {
    ETK_CHECK(j >= min_frac_bits && j <= max_frac_bits(),
              "argument 'frac_bits': the " << function << " tables cover input scales 2^-"
              << min_frac_bits << " .. 2^-" << max_frac_bits() << ", got 2^-" << j);
    return scales[static_cast<std::size_t>(j - min_frac_bits)];
  }
};

}  // namespace lut
ETK_END_NAMESPACE
