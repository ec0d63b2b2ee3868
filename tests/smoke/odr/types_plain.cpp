// Built with plain -O2: makes the int8 GEMM's packed weights and activation view, the
// types an engine builds once and hands to units built for other ISAs.
#include <etk/quant/int8_gemm.hpp>

#include <vector>

#include "types.hpp"

etk::PackedWeightsS8 make_weights(std::vector<std::int8_t>& storage) {
  storage.resize(kN * kK);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<std::int8_t>(i * 53 + 5);
  return etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(storage.data()), kN, kK, kK), {-3});
}

etk::ConstMatrixView<std::uint8_t> make_activations(std::vector<std::uint8_t>& storage) {
  storage.resize(kM * kK);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<std::uint8_t>(i * 37 + 11);
  return etk::matrix_view(static_cast<const std::uint8_t*>(storage.data()), kM, kK, kK);
}

std::vector<std::int32_t> gemm_plain_scalar(const etk::PackedWeightsS8& w, etk::ConstMatrixView<std::uint8_t> a) {
  std::vector<std::int32_t> out(kM * kN);
  etk::set_isa(etk::Isa::scalar);
  etk::int8_gemm_s32<std::uint8_t>(a, 9, w, {}, etk::MatrixView<std::int32_t>(out.data(), kM, kN, Eigen::OuterStride<>(kN)));
  etk::reset_isa();
  return out;
}
