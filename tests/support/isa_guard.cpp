// Linked into the ISA variants of a test: before anything compiled for that ISA runs, it
// checks that this CPU can execute it, and otherwise exits with 77 (ctest: skipped).
// This file itself is compiled without ISA flags.
#include <cstdio>
#include <cstdlib>

namespace {
__attribute__((constructor(101))) void etk_isa_guard() {
  __builtin_cpu_init();
#if defined(ETK_TEST_REQUIRE_avx2)
  const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* isa = "AVX2+FMA";
#elif defined(ETK_TEST_REQUIRE_avx512)
  const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512vnni");
  const char* isa = "AVX-512 F/BW/DQ/VL/VNNI";
#else
  const bool ok = true;
  const char* isa = "";
#endif
  if (!ok) {
    std::printf("SKIPPED: this CPU lacks %s; the test of that path was not run.\n", isa);
    std::exit(77);
  }
}
}  // namespace
