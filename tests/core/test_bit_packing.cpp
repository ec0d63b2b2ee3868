// Tests of bit packing: the fast paths write the reference's bytes exactly, unpacking
// returns the codes exactly, at every width 1..8 and awkward lengths, and the size is
// ceil(n * bits / 8); on every dispatch path, and every path writes the same bytes.
// etk:isa-variants
#include <catch2/catch.hpp>
#include <etk/core/bit_packing.hpp>
#include <etk/core/reference/bit_packing.hpp>

#include "../support/paths.hpp"

#include <random>
#include <vector>

namespace es = etk;

// Codes for a length-n test: random in [0, 2^bits), or an extreme pattern (all zero, all
// 0xFF: the bits above `bits` must be dropped, alternating 0 / 0xFF).
std::vector<std::uint8_t> make_codes(std::mt19937& rng, std::size_t n, int bits, int pattern) {
  std::vector<std::uint8_t> codes(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (pattern) {
      case 0: codes[i] = std::uint8_t(rng() & ((1u << bits) - 1)); break;
      case 1: codes[i] = std::uint8_t(rng()); break;
      case 2: codes[i] = 0; break;
      case 3: codes[i] = 0xFF; break;
      default: codes[i] = (i & 1) ? 0xFF : 0; break;
    }
  }
  return codes;
}

TEST_CASE("pack/unpack round-trips exactly and matches the reference bytes on every path") {
  const std::vector<std::size_t> lengths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                            31, 32, 33, 63, 64, 65, 95, 127, 128, 129, 1000, 4099};
  std::vector<std::vector<std::uint8_t>> first_path;  // bytes of the first path, per case
  bool first = true;
  paths::for_each([&](etk::Isa) {
    std::mt19937 rng(42);  // the same inputs on every path
    std::size_t case_index = 0;
    for (int bits = 1; bits <= 8; ++bits) {
      const unsigned mask = (1u << bits) - 1;
      for (std::size_t n : lengths) {
        for (int pattern = 0; pattern < 5; ++pattern, ++case_index) {
          const std::vector<std::uint8_t> codes = make_codes(rng, n, bits, pattern);
          std::vector<std::uint8_t> back(n, 0xAA);
          const std::size_t bytes = es::packed_bytes(n, bits);
          REQUIRE(bytes == (n * bits + 7) / 8);
          // One guard byte past the end must stay untouched.
          std::vector<std::uint8_t> fast(bytes + 1, 0x5C), ref(bytes, 0);
          es::pack_bits(codes.data(), n, bits, fast.data());
          es::reference::pack_bits(codes.data(), n, bits, ref.data());
          INFO("bits " << bits << ", n " << n << ", pattern " << pattern);
          CHECK(fast[bytes] == 0x5C);
          fast.pop_back();
          CHECK(fast == ref);
          if (first)
            first_path.push_back(fast);
          else
            CHECK(fast == first_path[case_index]);
          // Unpacking: a guard code past the end stays untouched; codes come back masked.
          back.push_back(0x3C);
          es::unpack_bits(fast.data(), n, bits, back.data());
          CHECK(back[n] == 0x3C);
          back.pop_back();
          bool codes_back = true;
          for (std::size_t i = 0; i < n; ++i) codes_back = codes_back && back[i] == (codes[i] & mask);
          CHECK(codes_back);
          std::vector<std::uint8_t> ref_back(n);
          es::reference::unpack_bits(ref.data(), n, bits, ref_back.data());
          CHECK(ref_back == back);
        }
      }
    }
    first = false;
  });
}

TEST_CASE("only the low bits of each code are stored; 4-bit order is low nibble first") {
  paths::for_each([](etk::Isa) {
    const std::vector<std::uint8_t> codes = {0xF3, 0x1A, 0x27};
    std::vector<std::uint8_t> out(2);
    es::pack_bits(codes.data(), 3, 4, out.data());
    CHECK(out[0] == 0xA3);
    CHECK(out[1] == 0x07);
    std::vector<std::uint8_t> codes2(80, 0xFF), out2(es::packed_bytes(80, 3));
    es::pack_bits(codes2.data(), 80, 3, out2.data());
    for (auto b : out2) CHECK(b == 0xFF);
    es::pack_bits(codes2.data(), 79, 3, out2.data());
    CHECK(out2.back() == 0x1F);  // 79*3 = 237 bits: the last 3 bits of byte 29 are unused
  });
}

TEST_CASE("bit widths outside 1..8 are rejected") {
  std::vector<std::uint8_t> codes(4), out(8);
  CHECK_THROWS_WITH(es::pack_bits(codes.data(), 4, 0, out.data()), Catch::Contains("'bits'"));
  CHECK_THROWS_WITH(es::unpack_bits(out.data(), 4, 9, codes.data()), Catch::Contains("'bits'"));
  CHECK_THROWS_AS(es::packed_bytes(4, -1), etk::invalid_argument);
  CHECK_THROWS_WITH(es::pack_bits(nullptr, 4, 4, out.data()), Catch::Contains("null"));
}
