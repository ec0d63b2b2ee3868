// Runs a test body once per dispatch path: in a test built without ISA flags (the
// "dispatch" variant, ETK_DISPATCH) each path this CPU runs is pinned with etk::set_isa in
// turn and a path it lacks is skipped with the reason printed; in a variant built with ISA
// flags (direct calls) the body runs once, on the path of those flags.
#pragma once

#include <catch2/catch.hpp>
#include <etk/core/isa.hpp>

#include <cstdio>
#include <vector>

namespace paths {

// The paths this build can take.
inline std::vector<etk::Isa> compiled() {
  if (!etk::dispatched()) return {etk::current_path()};
  return {etk::Isa::scalar, etk::Isa::avx2, etk::Isa::avx512, etk::Isa::avx512vnni};
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
