// Tests of the activation codec: buffer sizes match the formula, decode(encode(x)) equals
// a per-element reference exactly at every bit-width, channel groups follow importance,
// projections do what they promise, the layer-wise allocation, and the bad inputs.
// etk:isa-variants etk:threads
#include <catch2/catch.hpp>
#include <etk/quant/reference/uniform.hpp>
#include <etk/search/activation_compression.hpp>
#include <etk/core/reference/bit_packing.hpp>

#include "support/search_util.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace es = etk::search;
using etk::RowMatrixXf;

namespace {

// Calibration-like data: channel j has its own scale (some channels are outliers) and
// channels are correlated through a few latent factors.
RowMatrixXf activations(std::ptrdiff_t rows, std::ptrdiff_t channels, unsigned seed) {
  return search_test::activations(rows, channels, seed, true);
}
using search_test::random_matrix;
using search_test::view;

// The codec's coded value of coded channel `ch` in group g, element by element.
float reference_value(const es::ActivationCodec& c, std::ptrdiff_t g, std::ptrdiff_t j, float v) {
  const etk::QuantParams& p = c.grid(g);
  const std::int32_t q = etk::reference::quantize_value(v, p.scale[std::size_t(j)], p.zero_point[std::size_t(j)],
                                                        p.qmin(), p.qmax());
  return etk::reference::dequantize_value(q, p.scale[std::size_t(j)], p.zero_point[std::size_t(j)]);
}

}  // namespace

TEST_CASE("encoded size is rows * sum_g ceil(group_size * bits_g / 8), measured") {
  const RowMatrixXf calib = activations(200, 33, 1);
  for (const std::vector<int>& bits : {std::vector<int>{8, 3, 5}, {2, 2, 2}, {7, 6, 4}}) {
    es::CodecOptions o;
    o.group_size = 11;
    o.group_bits = bits;
    const auto codec = es::calibrate_codec(view(calib), o);
    std::size_t row = 0;
    for (int b : bits) row += (11 * std::size_t(b) + 7) / 8;
    CHECK(codec.row_bytes() == row);
    for (std::ptrdiff_t rows : {1, 2, 17, 63, 64, 65, 129}) {
      const RowMatrixXf x = activations(rows, 33, 2);
      CHECK(codec.encode(view(x)).size() == std::size_t(rows) * row);
    }
  }
}

TEST_CASE("decode(encode(x)) equals the per-element reference exactly at every bit-width") {
  for (std::ptrdiff_t channels : {1, 5, 16, 17, 33, 64}) {
    const RowMatrixXf calib = activations(300, channels, 3);
    for (int bits = 2; bits <= 8; ++bits) {
      es::CodecOptions o;
      o.group_bits = {bits};
      const auto codec = es::calibrate_codec(view(calib), o);
      // Beyond the calibration range too (saturation), and across the 64-row blocks.
      for (std::ptrdiff_t rows : {1, 3, 17, 31, 33, 65, 130}) {
        RowMatrixXf x = 1.3f * activations(rows, channels, unsigned(7 * bits + rows));
        const std::vector<std::uint8_t> bytes = codec.encode(view(x));
        const RowMatrixXf y = codec.decode(bytes, rows);
        INFO("channels " << channels << ", bits " << bits << ", rows " << rows);
        bool same = true;
        for (std::ptrdiff_t r = 0; r < rows; ++r)
          for (std::ptrdiff_t p = 0; p < channels; ++p) {
            const std::ptrdiff_t ch = codec.order()[std::size_t(p)];
            same = same && y(r, ch) == reference_value(codec, 0, p, x(r, ch));
          }
        CHECK(same);
        // Decoded values lie on the grid: encoding them again gives the same bytes.
        CHECK(codec.encode(view(y)) == bytes);
      }
    }
  }
}

TEST_CASE("scattered importance groups of mixed widths: exact, on strided views, all paths") {
  // Groups scattered over the channels take the channel-order quantizer + gather-pack
  // path; group sizes that are not multiples of 8 leave partial SWAR words; widths 2..8
  // mixed; the input and output views have padding columns (never read or written).
  for (std::ptrdiff_t channels : {12, 40, 120, 132}) {
    const RowMatrixXf calib = activations(200, channels, unsigned(channels));
    for (std::ptrdiff_t groups : {2, 4}) {
      es::CodecOptions o;
      o.group_size = channels / groups;
      o.group_bits = groups == 2 ? std::vector<int>{7, 3} : std::vector<int>{8, 5, 4, 2};
      const auto codec = es::calibrate_codec(view(calib), o);
      bool scattered = false;
      for (std::ptrdiff_t p = 0; p < channels; ++p) scattered = scattered || codec.order()[std::size_t(p)] != p;
      CHECK(scattered);
      for (std::ptrdiff_t rows : {1, 7, 31, 32, 33, 70}) {
        RowMatrixXf padded(rows, channels + 5);
        padded.setConstant(std::numeric_limits<float>::quiet_NaN());
        padded.leftCols(channels) = 1.2f * activations(rows, channels, unsigned(rows + channels));
        const auto xv = etk::matrix_view(static_cast<const float*>(padded.data()), rows, channels, channels + 5);
        std::vector<std::uint8_t> bytes(codec.encoded_bytes(rows));
        codec.encode(xv, bytes.data(), bytes.size());
        RowMatrixXf out(rows, channels + 5);
        out.setConstant(-7.0f);
        codec.decode(bytes.data(), bytes.size(), etk::matrix_view(out.data(), rows, channels, channels + 5));
        INFO("channels " << channels << ", groups " << groups << ", rows " << rows);
        bool same = true;
        for (std::ptrdiff_t r = 0; r < rows; ++r) {
          for (std::ptrdiff_t p = 0; p < channels; ++p) {
            const std::ptrdiff_t ch = codec.order()[std::size_t(p)];
            same = same && out(r, ch) == reference_value(codec, p / o.group_size, p % o.group_size, padded(r, ch));
          }
          for (std::ptrdiff_t c = channels; c < channels + 5; ++c) same = same && out(r, c) == -7.0f;
        }
        CHECK(same);
        // The bytes: each group's codes, in group order, packed at its width.
        std::vector<std::uint8_t> want(codec.encoded_bytes(rows));
        for (std::ptrdiff_t r = 0; r < rows; ++r)
          for (std::ptrdiff_t g = 0; g < groups; ++g) {
            std::vector<std::uint8_t> codes(std::size_t(o.group_size));
            const etk::QuantParams& grid = codec.grid(g);
            for (std::ptrdiff_t j = 0; j < o.group_size; ++j) {
              const std::ptrdiff_t ch = codec.order()[std::size_t(g * o.group_size + j)];
              codes[std::size_t(j)] = std::uint8_t(etk::reference::quantize_value(
                  padded(r, ch), grid.scale[std::size_t(j)], grid.zero_point[std::size_t(j)], grid.qmin(), grid.qmax()));
            }
            std::size_t offset = 0;
            for (std::ptrdiff_t h = 0; h < g; ++h) offset += etk::packed_bytes(std::size_t(o.group_size), codec.group_bits(h));
            etk::reference::pack_bits(codes.data(), codes.size(), codec.group_bits(g),
                                     want.data() + std::size_t(r) * codec.row_bytes() + offset);
          }
        CHECK(bytes == want);
      }
    }
  }
}

TEST_CASE("channel groups follow importance; widths meet the average exactly") {
  const RowMatrixXf calib = activations(400, 24, 5);
  es::CodecOptions o;
  o.group_size = 6;
  o.average_bits = 4.0;
  const auto codec = es::calibrate_codec(view(calib), o);
  REQUIRE(codec.groups() == 4);
  int total = 0;
  for (std::ptrdiff_t g = 0; g < 4; ++g) {
    total += codec.group_bits(g);
    if (g > 0) CHECK(codec.group_bits(g) <= codec.group_bits(g - 1));
  }
  CHECK(total == 16);
  // The outlier channels (c % 7 == 3, 8x larger) are in the first, widest group, kept in
  // channel order inside it.
  int outliers_first = 0;
  for (std::ptrdiff_t p = 0; p < 6; ++p) {
    outliers_first += codec.order()[std::size_t(p)] % 7 == 3;
    if (p > 0) CHECK(codec.order()[std::size_t(p)] > codec.order()[std::size_t(p - 1)]);
  }
  CHECK(outliers_first == 3);
  CHECK(codec.group_bits(0) > codec.group_bits(3));
  // Grouping by importance beats the same widths on channels in their natural order.
  const RowMatrixXf x = activations(300, 24, 6);
  auto error = [&](const es::ActivationCodec& c) {
    return (c.decode(c.encode(view(x)), x.rows()) - x).squaredNorm();
  };
  double natural_error = 0;
  {
    // Same widths, but groups of channels taken in order: one codec per group of 6.
    for (std::ptrdiff_t g = 0; g < 4; ++g) {
      const RowMatrixXf cg = calib.middleCols(g * 6, 6), xg = x.middleCols(g * 6, 6);
      es::CodecOptions og;
      og.group_bits = {codec.group_bits(g)};
      const auto c = es::calibrate_codec(view(cg), og);
      natural_error += (c.decode(c.encode(view(xg)), xg.rows()) - xg).squaredNorm();
    }
  }
  CHECK(error(codec) < natural_error);
}

TEST_CASE("projected codecs: decode = mean + fake-quantized coefficients * decoder") {
  const std::ptrdiff_t C = 32, k = 8;
  const RowMatrixXf calib = activations(500, C, 11);
  const RowMatrixXf w = random_matrix(C, 20, 12);
  const RowMatrixXf x = activations(70, C, 13);
  double err_y[2];
  int i = 0;
  for (auto kind : {es::ProjectionKind::pca, es::ProjectionKind::compression_aware}) {
    es::CodecOptions o;
    o.projection = kind;
    o.reduced_dim = k;
    o.group_size = 4;
    o.average_bits = 6;
    const auto codec = es::calibrate_codec(view(calib), o, view(w));
    REQUIRE(codec.groups() == 2);
    CHECK(codec.row_bytes() == (4 * std::size_t(codec.group_bits(0)) + 7) / 8 +
                                   (4 * std::size_t(codec.group_bits(1)) + 7) / 8);
    const RowMatrixXf y = codec.decode(codec.encode(view(x)), x.rows());
    const auto& p = codec.projection();
    const RowMatrixXf z = (x.rowwise() - p.mean) * p.encoder;
    RowMatrixXf zq(z.rows(), k);
    for (std::ptrdiff_t r = 0; r < z.rows(); ++r)
      for (std::ptrdiff_t q = 0; q < k; ++q) {
        const std::ptrdiff_t ch = codec.order()[std::size_t(q)];
        zq(r, ch) = reference_value(codec, q / 4, q % 4, z(r, ch));
      }
    const RowMatrixXf expect = (zq * p.decoder).rowwise() + p.mean;
    // Float products of k terms: |error| <= k * 2^-24 * (|zq| |D|) per element, plus the
    // same for the encoder's products moving a value across a rounding boundary, which
    // can change one code by one step: allow one grid step through D as well.
    const RowMatrixXf bound = ((zq.cwiseAbs() * p.decoder.cwiseAbs()).array() * (4.0f * k * 0x1p-24f)).matrix();
    float step = 0;
    for (std::ptrdiff_t g = 0; g < codec.groups(); ++g)
      for (float s : codec.grid(g).scale) step = std::max(step, s);
    const float one_step = step * p.decoder.cwiseAbs().maxCoeff();
    CHECK(((y - expect).cwiseAbs() - bound).maxCoeff() <= one_step);
    err_y[i++] = ((y - x) * w).squaredNorm();
  }
  CHECK(err_y[1] < err_y[0]);  // compression-aware wins on the next layer's output
}

TEST_CASE("layer-wise allocation of compression ratios under a byte budget") {
  // Layer 0 is fragile, layer 1 robust: the budget cut goes to layer 1 first.
  const std::vector<std::vector<es::CompressionCandidate>> cand = {
      {{100, 0.0}, {25, 9.0}, {50, 1.0}},
      {{100, 0.0}, {50, 0.1}, {25, 0.3}},
  };
  const auto r = es::allocate_compression_ratios(cand, 150);
  REQUIRE(r.budget_met);
  CHECK(r.choice == std::vector<int>{0, 1});
  const auto r2 = es::allocate_compression_ratios(cand, 75);
  CHECK(r2.choice == std::vector<int>{2, 2});
  CHECK(r2.cost == 75);
  const auto r3 = es::allocate_compression_ratios(cand, 10);
  CHECK_FALSE(r3.budget_met);
  CHECK(r3.choice == std::vector<int>{1, 2});
  CHECK_THROWS_WITH(es::allocate_compression_ratios({{}, {{1, 0}}}, 1),
                    Catch::Contains("layer 0 has an empty candidate list"));
}

TEST_CASE("codec bad inputs are rejected by name") {
  const RowMatrixXf calib = activations(50, 12, 14);
  es::CodecOptions o;
  o.group_size = 5;
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("must divide"));
  o.group_size = 4;
  o.group_bits = {4, 9, 4};
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("group_bits"));
  o.group_bits = {4, 4};
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("one per group"));
  o.group_bits.clear();
  o.average_bits = 1.5;
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("average_bits"));
  o.average_bits = 4;
  o.bit_choices.clear();
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("empty candidate list"));
  o.bit_choices = {4, 2};
  o.projection = es::ProjectionKind::compression_aware;
  o.reduced_dim = 4;
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("next_weight"));
  o.projection = es::ProjectionKind::pca;
  o.reduced_dim = 13;
  CHECK_THROWS_WITH(es::calibrate_codec(view(calib), o), Catch::Contains("reduced_dim"));
  RowMatrixXf bad = calib;
  bad(3, 4) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(es::calibrate_codec(view(bad), es::CodecOptions{}), Catch::Contains("'calib'"));
  const auto codec = es::calibrate_codec(view(calib), es::CodecOptions{});
  const RowMatrixXf wrong = activations(3, 11, 1);
  CHECK_THROWS_WITH(codec.encode(view(wrong)), Catch::Contains("'x'"));
  std::vector<std::uint8_t> bytes = codec.encode(view(calib));
  bytes.pop_back();
  CHECK_THROWS_WITH(codec.decode(bytes, calib.rows()), Catch::Contains("'in'"));
  RowMatrixXf x = calib;
  x(0, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(codec.encode(view(x)), etk::invalid_argument);
}

TEST_CASE("codec on a Context: the same bytes and values for 1, 2 and 3 threads, arena or none", "[threads]") {
  const std::ptrdiff_t C = 24;
  const RowMatrixXf calib = activations(400, C, 21);
  const RowMatrixXf w = random_matrix(C, 10, 22);
  std::vector<es::CodecOptions> options(4);
  options[0].group_size = 0;  // one group
  options[1].group_size = 6;  // scattered importance groups of mixed widths
  options[1].average_bits = 4.5;
  options[2].projection = es::ProjectionKind::pca;
  options[2].reduced_dim = 12;
  options[2].group_size = 4;
  options[3].projection = es::ProjectionKind::compression_aware;
  options[3].reduced_dim = 8;
  options[3].group_size = 8;
  for (const es::CodecOptions& o : options) {
    const auto codec = es::calibrate_codec(view(calib), o, view(w));
    for (std::ptrdiff_t rows : {1, 31, 32, 33, 100, 257}) {
      const RowMatrixXf x = activations(rows, C, unsigned(30 + rows));
      const std::vector<std::uint8_t> bytes1 = codec.encode(view(x));
      const RowMatrixXf y1 = codec.decode(bytes1, rows);
      for (int threads : {1, 2, 3}) {
        etk::SimpleThreadPool pool(threads);
        etk::ScratchArena arena(std::max(codec.encode_scratch_bytes(rows, etk::Context{&pool, nullptr}),
                                         codec.decode_scratch_bytes(rows, etk::Context{&pool, nullptr})));
        const void* planned = arena.data();
        for (etk::ScratchArena* scratch : {static_cast<etk::ScratchArena*>(nullptr), &arena}) {
          const etk::Context ctx{&pool, scratch};
          INFO("projection " << int(o.projection) << " groups " << codec.groups() << " rows " << rows
                             << " threads " << threads << " arena " << (scratch != nullptr));
          const std::vector<std::uint8_t> bytes = codec.encode(view(x), ctx);
          REQUIRE(bytes == bytes1);
          const RowMatrixXf y = codec.decode(bytes, rows, ctx);
          REQUIRE((y.array() == y1.array()).all());
        }
        CHECK(arena.data() == planned);  // the plan was large enough: no regrowth
      }
    }
  }
  // Scratch grows with the pool's concurrency (one block's buffers per worker).
  const auto codec = es::calibrate_codec(view(calib), options[2]);
  etk::SimpleThreadPool pool3(3);
  CHECK(codec.encode_scratch_bytes(100, etk::Context{&pool3, nullptr}) == 3 * codec.encode_scratch_bytes(100));
  CHECK_THROWS_WITH(codec.encode_scratch_bytes(0), Catch::Contains("rows"));
}
