// Linked into the ISA variants of a test: before anything compiled for that ISA runs, it
// checks that this CPU can execute it, and otherwise exits with 77 (ctest: skipped). In the
// dispatch variant it checks the path ETK_ISA names instead. This file itself is compiled
// without ISA flags.
#include <cstdio>
#include <cstdlib>

#if defined(ETK_TEST_REQUIRE_dispatch)
#include <etk/core/isa.hpp>
#endif

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
#elif defined(ETK_TEST_REQUIRE_dispatch)
  const char* env = std::getenv("ETK_ISA");
  const char* isa = env ? env : "";
  bool ok = true;
  if (env && *env) {
    try {
      ok = etk::isa_supported(etk::isa_from_name(env));
    } catch (const etk::invalid_argument&) {
      ok = true;  // an unknown name is the test's own business (it must throw)
    }
  }
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
