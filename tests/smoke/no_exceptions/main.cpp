// Built with -fno-exceptions: a bad argument must print etk's message and abort.
#include <etk/etk.hpp>

int main() {
  etk::check::positive_finite("scale", 0.0);
  return 0;  // not reached
}
