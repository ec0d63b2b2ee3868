// etk:isa-variants
// Tests of etk/quant/packed_int4.hpp: the bytes are exactly the 4-bit stream of
// etk/core/bit_packing.hpp row by row (the reference packer, so there is one int4 layout),
// codes round-trip exactly for every 4-bit value, signed and unsigned, odd and even widths,
// strided sources; dequantizing the packing equals fake-quantizing; bad input throws.
#include <catch2/catch.hpp>
#include <etk/core/reference/bit_packing.hpp>
#include <etk/quant/packed_int4.hpp>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "support/quant_util.hpp"

using etk::QuantParams;
using quant_test::cview;

namespace {

template <typename T>
void check_layout(std::ptrdiff_t rows, std::ptrdiff_t cols, std::mt19937& gen) {
  const int lo = std::is_signed<T>::value ? -8 : 0;
  std::uniform_int_distribution<int> d(lo, lo + 15);
  // A strided source: 3 padding columns that hold codes out of range and must be ignored.
  etk::RowMatrix<T> buf(rows, cols + 3);
  buf.setConstant(static_cast<T>(std::is_signed<T>::value ? 100 : 200));
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) buf(r, c) = static_cast<T>(d(gen));
  const auto src = etk::matrix_view(static_cast<const T*>(buf.data()), rows, cols, cols + 3);
  const etk::PackedInt4 packed = etk::pack_int4<T>(src);
  INFO("rows " << rows << " cols " << cols << " signed " << std::is_signed<T>::value);
  REQUIRE(packed.bytes.size() == static_cast<std::size_t>(rows * ((cols + 1) / 2)));
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    std::vector<std::uint8_t> nibbles(static_cast<std::size_t>(cols)), ref(static_cast<std::size_t>((cols + 1) / 2));
    for (std::ptrdiff_t c = 0; c < cols; ++c) nibbles[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(buf(r, c) & 0xF);
    etk::reference::pack_bits(nibbles.data(), nibbles.size(), 4, ref.data());
    REQUIRE(std::equal(ref.begin(), ref.end(), packed.bytes.begin() + r * packed.row_bytes()));
  }
  const etk::RowMatrix<std::int8_t> back = etk::unpack_int4(packed);
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      REQUIRE(int(back(r, c)) == int(buf(r, c)));
      REQUIRE(packed.code(r, c) == int(buf(r, c)));
    }
}

}  // namespace

TEST_CASE("packed int4 is the bit packer's 4-bit stream per row, and round-trips every code") {
  std::mt19937 gen(11);
  for (std::ptrdiff_t rows : {1, 2, 5})
    for (std::ptrdiff_t cols : {1, 2, 3, 7, 16, 31, 32, 33, 63, 64, 65, 130}) {
      check_layout<std::int8_t>(rows, cols, gen);
      check_layout<std::uint8_t>(rows, cols, gen);
    }
  // The nibble order by hand: even code low, odd code high, two's complement.
  etk::RowMatrix<std::int8_t> c(1, 3);
  c << -8, 7, -1;
  const etk::PackedInt4 p = etk::pack_int4<std::int8_t>(cview(c));
  REQUIRE(p.bytes.size() == 2);
  CHECK(p.bytes[0] == 0x78);
  CHECK(p.bytes[1] == 0x0F);
}

TEST_CASE("packed int4 round-trips codes and dequantizes like unpacked codes") {
  for (bool is_signed : {true, false})
    for (std::ptrdiff_t cols : {1, 2, 7, 16, 33}) {
      const QuantParams p = is_signed ? QuantParams::symmetric(0.9f, 4, true) : QuantParams::from_range(-0.7f, 1.1f, 4, false);
      const etk::RowMatrixXf x = quant_test::gaussian(5, cols, 99, 0.3f);
      const etk::PackedInt4 packed = etk::quantize_int4(cview(x), p);
      CHECK(packed.bytes.size() == static_cast<std::size_t>(5 * ((cols + 1) / 2)));
      const etk::RowMatrixXf a = etk::dequantize(packed, p);
      const etk::RowMatrixXf b = etk::fake_quantize(cview(x), p);
      CHECK((a.array() == b.array()).all());
    }
}

TEST_CASE("packed int4: codes out of range and grids wider than 4 bits are rejected") {
  etk::RowMatrix<std::int8_t> c(1, 2);
  c << 3, 9;
  CHECK_THROWS_WITH(etk::pack_int4<std::int8_t>(cview(c)), Catch::Contains("4 bits"));
  etk::RowMatrix<std::uint8_t> u(1, 2);
  u << 15, 16;
  CHECK_THROWS_WITH(etk::pack_int4<std::uint8_t>(cview(u)), Catch::Contains("4 bits"));
  const etk::RowMatrixXf x = quant_test::gaussian(4, 5, 1);
  CHECK_THROWS_WITH(etk::quantize_int4(cview(x), QuantParams::per_tensor(0.1f, 0, 8, true)), Catch::Contains("bits <= 4"));
}

TEST_CASE("packed int4: inconsistent shapes and short buffers are rejected, never read past") {
  const QuantParams p = QuantParams::symmetric(1.0f, 4);
  const etk::RowMatrixXf x = quant_test::gaussian(5, 7, 3);
  const etk::PackedInt4 good = etk::quantize_int4(cview(x), p);
  REQUIRE(good.bytes.size() == 5 * 4);
  etk::PackedInt4 shorter = good;
  shorter.bytes.resize(good.bytes.size() - 1);
  CHECK_THROWS_WITH(etk::dequantize(shorter, p), Catch::Contains("'packed'") && Catch::Contains("bytes"));
  CHECK_THROWS_WITH(etk::unpack_int4(shorter), Catch::Contains("bytes"));
  etk::PackedInt4 longer = good;
  longer.bytes.push_back(0);
  CHECK_THROWS_WITH(etk::unpack_int4(longer), Catch::Contains("bytes"));
  for (std::ptrdiff_t rows : {std::ptrdiff_t(-1), std::ptrdiff_t(0)}) {
    etk::PackedInt4 bad = good;
    bad.rows = rows;
    CHECK_THROWS_WITH(etk::unpack_int4(bad), Catch::Contains("shape"));
  }
  etk::PackedInt4 huge = good;
  huge.rows = std::numeric_limits<std::ptrdiff_t>::max() / 2;  // rows * row_bytes overflows
  CHECK_THROWS_WITH(etk::unpack_int4(huge), Catch::Contains("bytes"));
  huge.cols = std::numeric_limits<std::ptrdiff_t>::max();
  CHECK_THROWS_AS(etk::unpack_int4(huge), etk::invalid_argument);
  CHECK(etk::unpack_int4(good) == etk::quantize<std::int8_t>(cview(x), p));
}
