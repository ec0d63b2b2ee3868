// Links a plain -O2 unit and an -mavx2 -mfma unit that use the same etk headers, and
// checks that each still runs the code compiled for its own flags and that both compute
// the same attention to within float rounding. Then passes packed int8 weights and an
// activation view made in a plain unit to a unit built with -mavx512f ... -mavx512vnni
// (the same types in both) and checks its GEMM against the plain unit's scalar path, bit
// for bit (skipped, saying so, on a CPU without AVX-512 VNNI).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <etk/core/isa.hpp>

#include "types.hpp"

std::string unit_plain(std::vector<float>& out);
std::string unit_avx2(std::vector<float>& out);

int main() {
  std::vector<float> x, y;
  const std::string a = unit_plain(x), b = unit_avx2(y);
  std::printf("plain unit runs etk built for %s, avx2 unit for %s\n", a.c_str(), b.c_str());
  // Both are fp32 attentions with |v| <= 1, |q|, |k| <= sqrt(15), 40 keys, dim 15, scale
  // 1/sqrt(15): the bound of docs/numerics.md "Dense attention" puts each within
  // 2 delta + (2*9 + 2*40 + 3 + 4) u = 9.3e-6 + 6.3e-6 < 1.6e-5 of the exact value.
  float err = 0;
  for (std::size_t i = 0; i < x.size(); ++i) err = std::fmax(err, std::fabs(x[i] - y[i]));
  std::printf("max difference between the units' attention: %g\n", err);
  if (!(a == "scalar" && b == "avx2" && x.size() == y.size() && err < 3.2e-5f)) return 1;
  std::vector<std::int8_t> wbuf;
  std::vector<std::uint8_t> abuf;
  const etk::PackedWeightsS8 w = make_weights(wbuf);
  const auto av = make_activations(abuf);
  if (!etk::isa_supported(etk::Isa::avx512vnni)) {
    std::printf("SKIPPED the -mavx512vnni unit: this CPU runs paths up to %s\n", etk::isa_name(etk::best_isa()));
    return 0;
  }
  const char* isa = "";
  const std::vector<std::int32_t> wide = gemm_avx512_unit(w, av, &isa), scalar = gemm_plain_scalar(w, av);
  std::printf("plain unit's weights multiplied in the %s unit: %s the plain unit's scalar path\n", isa,
              wide == scalar ? "same bits as" : "DIFFERENT from");
  // A unit with VNNI flags reports amx where the CPU and OS run the int8 GEMM's tiles.
  return ((std::string(isa) == "avx512vnni" || std::string(isa) == "amx") && wide == scalar) ? 0 : 1;
}
