// utf8.hpp: UTF-8 to code points and back, for the examples' text handling. Decoding is
// lenient: a byte that does not start a valid sequence becomes the code point of its value.
#pragma once

#include <string>
#include <vector>

namespace examples {

std::vector<char32_t> utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);

}  // namespace examples
