// The functions of types_plain.cpp and types_avx512.cpp (built with different ISA flags).
#pragma once
#include <etk/quant/packed_weights.hpp>

#include <cstdint>
#include <vector>

constexpr int kM = 13, kK = 45, kN = 70;
etk::PackedWeightsS8 make_weights(std::vector<std::int8_t>& storage);
etk::ConstMatrixView<std::uint8_t> make_activations(std::vector<std::uint8_t>& storage);
std::vector<std::int32_t> gemm_plain_scalar(const etk::PackedWeightsS8& w, etk::ConstMatrixView<std::uint8_t> a);
std::vector<std::int32_t> gemm_avx512_unit(const etk::PackedWeightsS8& w, etk::ConstMatrixView<std::uint8_t> a,
                                           const char** isa);
