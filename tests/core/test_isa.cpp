// Tests of etk/core/isa.hpp: CPU detection agrees with the compiler's own probe, pinning
// accepts exactly the paths this CPU runs, the ETK_ISA environment variable is honoured,
// and bad names or paths are etk::invalid_argument (never an illegal instruction).
#include <catch2/catch.hpp>
#include <etk/core/isa.hpp>
#include <etk/quant/int8_gemm.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/paths.hpp"

namespace {

// GCC 12's __builtin_cpu_supports has no AMX feature names; the kernel's flags in
// /proc/cpuinfo are the second opinion there (Linux lists amx_int8 only when it enables
// the tile state; etk also asks for the per-process permission).
bool kernel_reports_amx_int8() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return line.find(" amx_int8") != std::string::npos && line.find(" amx_tile") != std::string::npos;
  return false;
}

// __builtin_cpu_supports checks the CPUID bits (and, in libgcc, the OS state for AVX and
// AVX-512): an independent second opinion on the widest path.
etk::Isa compiler_probe() {
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return etk::Isa::scalar;
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
    return etk::Isa::avx2;
  if (!__builtin_cpu_supports("avx512vnni")) return etk::Isa::avx512;
  return kernel_reports_amx_int8() ? etk::Isa::amx : etk::Isa::avx512vnni;
}

// Sets ETK_ISA for one scope and forgets any pinned path, restoring both at the end.
struct EnvIsa {
  explicit EnvIsa(const char* value) {
    ::setenv("ETK_ISA", value, 1);
    etk::reset_isa();
  }
  ~EnvIsa() {
    ::unsetenv("ETK_ISA");
    etk::reset_isa();
  }
};

}  // namespace

TEST_CASE("the detected path is the widest one the CPU and OS run") {
  std::printf("this CPU runs paths up to %s\n", etk::isa_name(etk::best_isa()));
  CHECK(etk::best_isa() == compiler_probe());
  CHECK(etk::isa_supported(etk::Isa::scalar));
}

TEST_CASE("a plain translation unit dispatches and pins every path the CPU runs") {
  REQUIRE(etk::dispatched());
  for (etk::Isa isa : {etk::Isa::scalar, etk::Isa::avx2, etk::Isa::avx512, etk::Isa::avx512vnni, etk::Isa::amx}) {
    CHECK(etk::isa_from_name(etk::isa_name(isa)) == isa);
    if (etk::isa_supported(isa)) {
      const paths::Pin pin(isa);
      CHECK(etk::active_isa() == isa);
      CHECK(etk::current_path() == isa);
    } else {
      std::printf("path %s: this CPU lacks it; checking that pinning it is rejected\n", etk::isa_name(isa));
      CHECK_THROWS_AS(etk::set_isa(isa), etk::invalid_argument);
    }
  }
  etk::reset_isa();
  CHECK(etk::active_isa() == etk::best_isa());
}

TEST_CASE("amx is the level above avx512vnni; pinning avx512vnni keeps the tiles unused") {
  CHECK(static_cast<int>(etk::Isa::amx) > static_cast<int>(etk::Isa::avx512vnni));
  CHECK(std::string(etk::isa_name(etk::Isa::amx)) == "amx");
  if (etk::isa_supported(etk::Isa::amx)) {
    CHECK(etk::isa_supported(etk::Isa::avx512vnni));
    const paths::Pin pin(etk::Isa::avx512vnni);
    CHECK(etk::active_isa() == etk::Isa::avx512vnni);
    CHECK(etk::current_path() == etk::Isa::avx512vnni);
  } else {
    std::printf("path amx: this CPU or its OS lacks AMX-INT8; pinning it must be rejected\n");
    CHECK_THROWS_WITH(etk::set_isa(etk::Isa::amx), Catch::Contains("amx"));
  }
}

TEST_CASE("bad ISA names and values are rejected") {
  CHECK_THROWS_WITH(etk::isa_from_name("avx1024"), Catch::Contains("avx1024"));
  CHECK_THROWS_AS(etk::isa_from_name(""), etk::invalid_argument);
  CHECK_THROWS_AS(etk::isa_from_name("AVX2"), etk::invalid_argument);  // names are exact
  CHECK_THROWS_WITH(etk::set_isa(static_cast<etk::Isa>(9)), Catch::Contains("'isa'"));
}

TEST_CASE("ETK_ISA pins the path of dispatched calls") {
  for (etk::Isa isa : {etk::Isa::scalar, etk::Isa::avx2, etk::Isa::avx512, etk::Isa::avx512vnni, etk::Isa::amx}) {
    const EnvIsa env(etk::isa_name(isa));
    if (etk::isa_supported(isa)) {
      CHECK(etk::active_isa() == isa);
    } else {
      CHECK_THROWS_WITH(etk::active_isa(), Catch::Contains("ETK_ISA"));
    }
  }
  {
    const EnvIsa env("");
    CHECK(etk::active_isa() == etk::best_isa());
  }
  {
    // A bad value fails the first dispatched kernel call, with the variable named, and
    // keeps failing (nothing is silently chosen instead).
    const EnvIsa env("sse9");
    CHECK_THROWS_WITH(etk::active_isa(), Catch::Contains("ETK_ISA=sse9") || Catch::Contains("sse9"));
    const etk::RowMatrix<std::int8_t> w = etk::RowMatrix<std::int8_t>::Ones(4, 8);
    const etk::RowMatrix<std::uint8_t> a = etk::RowMatrix<std::uint8_t>::Ones(2, 8);
    const etk::PackedWeightsS8 packed(etk::matrix_view(w.data(), 4, 8, 8));
    etk::RowMatrix<std::int32_t> out(2, 4);
    CHECK_THROWS_AS(etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(a.data(), 2, 8, 8), 0, packed, {},
                                                     etk::MatrixView<std::int32_t>(out.data(), 2, 4, Eigen::OuterStride<>(4))),
                    etk::invalid_argument);
    CHECK_THROWS_AS(etk::active_isa(), etk::invalid_argument);
    // set_isa overrides the environment.
    etk::set_isa(etk::Isa::scalar);
    CHECK(etk::active_isa() == etk::Isa::scalar);
  }
  CHECK(etk::active_isa() == etk::best_isa());
}
