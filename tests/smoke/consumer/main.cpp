// A user's program: includes the umbrella header, calls etk, catches etk's error type.
#include <etk/etk.hpp>

#include <cstdio>

int main() {
  std::printf("etk %s, compiled for %s\n", ETK_VERSION_STRING, etk::compiled_isa());
  try {
    etk::check::positive_finite("scale", -1.0);
  } catch (const etk::invalid_argument& e) {
    std::printf("caught: %s\n", e.what());
    return 0;
  }
  return 1;
}
