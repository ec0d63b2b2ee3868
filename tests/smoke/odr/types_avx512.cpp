// Built with -mavx512f/bw/dq/vl/vnni: multiplies with weights and a view made in the plain
// unit (the same C++ types whatever the flags), on the path of its own flags.
#include <etk/quant/int8_gemm.hpp>

#include <vector>

#include "types.hpp"

std::vector<std::int32_t> gemm_avx512_unit(const etk::PackedWeightsS8& w, etk::ConstMatrixView<std::uint8_t> a,
                                           const char** isa) {
  *isa = etk::isa_name(etk::current_path());
  std::vector<std::int32_t> out(kM * kN);
  etk::int8_gemm_s32<std::uint8_t>(a, 9, w, {}, etk::MatrixView<std::int32_t>(out.data(), kM, kN, Eigen::OuterStride<>(kN)));
  return out;
}
