// Runs a test body once per dispatch path: in a test built without ISA flags (the
// "dispatch" variant, ETK_DISPATCH) each path this CPU runs (or the one ETK_ISA names) is
// pinned with etk::set_isa in turn and a path it lacks is skipped with the reason printed;
// in a variant built with ISA flags (direct calls) the body runs once, on the path of
// those flags.
#pragma once

#include <catch2/catch.hpp>
#include <etk/core/isa.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace paths {

// Every path a dispatched build has. `amx` runs every kernel's avx512vnni body except the
// int8 GEMM's tiles, so only the tests of that GEMM add it (with_amx; their file carries
// the marker etk:amx-path, which adds a ctest entry with ETK_ISA=amx).
inline std::vector<etk::Isa> all() { return {etk::Isa::scalar, etk::Isa::avx2, etk::Isa::avx512, etk::Isa::avx512vnni}; }
inline std::vector<etk::Isa> with_amx() {
  std::vector<etk::Isa> v = all();
  v.push_back(etk::Isa::amx);
  return v;
}

// The paths a test body runs on: the one of the unit's flags (direct calls), the one ETK_ISA
// names (ctest runs the dispatch variant once per path), or every path.
inline std::vector<etk::Isa> compiled() {
  if (!etk::dispatched()) return {etk::current_path()};
  const char* env = std::getenv("ETK_ISA");
  if (env && *env) return {etk::isa_from_name(env)};
  return all();
}

// Restores the default path (ETK_ISA or the best) when a pinned body ends, even by throwing.
struct Pin {
  explicit Pin(etk::Isa isa) {
    if (etk::dispatched()) etk::set_isa(isa);
  }
  ~Pin() { etk::reset_isa(); }
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;
};

// body(isa) on every path this build has and this CPU runs.
template <typename F>
void for_each(F&& body) {
  for (etk::Isa isa : compiled()) {
    if (!etk::isa_supported(isa)) {
      std::printf("SKIPPED path %s: this CPU runs paths up to %s\n", etk::isa_name(isa),
                  etk::isa_name(etk::best_isa()));
      continue;
    }
    INFO("path " << etk::isa_name(isa));
    const Pin pin(isa);
    body(isa);
  }
}

}  // namespace paths
