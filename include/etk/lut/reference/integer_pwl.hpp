// etk/lut/reference/integer_pwl.hpp: the plain scalar integer evaluation of a table.
//
// One element at a time with int64 arithmetic (IntegerPwl::output): the twin the int16-
// lane SIMD paths are compared with bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {
class IntegerPwl;
namespace reference {

template <typename Table, typename OutT>
void pwl_eval_int8(const Table& table, const std::int8_t* q, OutT* y, std::ptrdiff_t n) {
  for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = static_cast<OutT>(table.output(q[i]));
}

}  // namespace reference
}  // namespace lut
ETK_END_NAMESPACE
