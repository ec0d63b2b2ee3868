// Tests of bit packing: the fast paths write the reference's bytes exactly, unpacking
// returns the codes exactly, at every width 1..8 and awkward lengths, and the size is
// ceil(n * bits / 8).
// etk:isa-variants
#include <catch2/catch.hpp>
#include <etk/core/bit_packing.hpp>
#include <etk/core/reference/bit_packing.hpp>

#include <random>
#include <vector>

namespace es = etk;

TEST_CASE("pack/unpack round-trips exactly and matches the reference bytes") {
  std::mt19937 rng(42);
  const std::vector<std::size_t> lengths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                            31, 33, 63, 64, 65, 127, 128, 129, 1000, 4099};
  for (int bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : lengths) {
      std::vector<std::uint8_t> codes(n), back(n, 0xAA);
      for (auto& c : codes) c = std::uint8_t(rng() & ((1u << bits) - 1));
      const std::size_t bytes = es::packed_bytes(n, bits);
      REQUIRE(bytes == (n * bits + 7) / 8);
      // One guard byte past the end must stay untouched.
      std::vector<std::uint8_t> fast(bytes + 1, 0x5C), ref(bytes, 0);
      es::pack_bits(codes.data(), n, bits, fast.data());
      es::reference::pack_bits(codes.data(), n, bits, ref.data());
      INFO("bits " << bits << ", n " << n);
      CHECK(fast[bytes] == 0x5C);
      fast.pop_back();
      CHECK(fast == ref);
      es::unpack_bits(fast.data(), n, bits, back.data());
      CHECK(back == codes);
      std::vector<std::uint8_t> ref_back(n);
      es::reference::unpack_bits(ref.data(), n, bits, ref_back.data());
      CHECK(ref_back == codes);
    }
  }
}

TEST_CASE("only the low bits of each code are stored; 4-bit order is low nibble first") {
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
}

TEST_CASE("bit widths outside 1..8 are rejected") {
  std::vector<std::uint8_t> codes(4), out(8);
  CHECK_THROWS_WITH(es::pack_bits(codes.data(), 4, 0, out.data()), Catch::Contains("'bits'"));
  CHECK_THROWS_WITH(es::unpack_bits(out.data(), 4, 9, codes.data()), Catch::Contains("'bits'"));
  CHECK_THROWS_AS(es::packed_bytes(4, -1), etk::invalid_argument);
  CHECK_THROWS_WITH(es::pack_bits(nullptr, 4, 4, out.data()), Catch::Contains("null"));
}
