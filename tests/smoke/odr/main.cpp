// Links a plain -O2 unit and an -mavx2 -mfma unit that use the same etk headers, and
// checks that each still runs the code compiled for its own flags.
#include <cstdio>
#include <string>

std::string unit_plain();
std::string unit_avx2();

int main() {
  const std::string a = unit_plain(), b = unit_avx2();
  std::printf("plain unit runs etk built for %s, avx2 unit for %s\n", a.c_str(), b.c_str());
  return (a == "scalar" && b == "avx2") ? 0 : 1;
}
