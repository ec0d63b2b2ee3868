// Tests of the shared argument checks: each rejects bad input with etk::invalid_argument
// and a message naming the argument, and accepts good input.
#include <catch2/catch.hpp>
#include <etk/core/checks.hpp>

#include <algorithm>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

TEST_CASE("positive_finite rejects zero, negatives, NaN and Inf and names the argument") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, nan, inf, -inf}) {
    CHECK_THROWS_WITH(etk::check::positive_finite("scale", bad), Catch::Contains("'scale'"));
    CHECK_THROWS_AS(etk::check::positive_finite("scale", bad), etk::invalid_argument);
  }
  CHECK_NOTHROW(etk::check::positive_finite("scale", 1e-30));
}

TEST_CASE("finite finds a non-finite value and reports where it is") {
  std::vector<float> data(3 * 5, 1.0f);
  CHECK_NOTHROW(etk::check::finite("x", data.data(), 3, 5, 5));
  data[2 * 5 + 3] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(etk::check::finite("x", data.data(), 3, 5, 5),
                    Catch::Contains("row 2") && Catch::Contains("column 3"));
  // A stride that skips the bad value does not see it.
  data.assign(3 * 6, 1.0f);
  data[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_NOTHROW(etk::check::finite("x", data.data(), 3, 5, 6));
  // A null pointer is rejected, not read; with nothing to read it is accepted.
  CHECK_THROWS_WITH(etk::check::finite("x", static_cast<const float*>(nullptr), 3, 5, 5),
                    Catch::Contains("'x'") && Catch::Contains("null"));
  CHECK_NOTHROW(etk::check::finite("x", static_cast<const float*>(nullptr), 0, 5, 5));
}

TEST_CASE("heads_layout rejects empty and overlapping layouts") {
  std::vector<float> buf(2 * 3 * 4);
  etk::HeadsView<const float> ok(buf.data(), 2, 3, 4);
  CHECK_NOTHROW(etk::check::heads_layout("q", ok));
  CHECK_THROWS_WITH(etk::check::heads_layout("q", etk::HeadsView<const float>(buf.data(), 0, 3, 4)),
                    Catch::Contains("head"));
  CHECK_THROWS_WITH(etk::check::heads_layout("k", etk::HeadsView<const float>(buf.data(), 2, 0, 4)),
                    Catch::Contains("empty sequence"));
  CHECK_THROWS_WITH(etk::check::heads_layout("v", etk::HeadsView<const float>(buf.data(), 2, 3, 0)),
                    Catch::Contains("dim"));
  CHECK_THROWS_WITH(
      etk::check::heads_layout("q", etk::HeadsView<const float>(buf.data(), 2, 3, 4, 4, 8)),
      Catch::Contains("overlaps"));
}

TEST_CASE("bits_in_range accepts the range and rejects outside it") {
  CHECK_NOTHROW(etk::check::bits_in_range("bits", 2, 2, 8));
  CHECK_NOTHROW(etk::check::bits_in_range("bits", 8, 2, 8));
  CHECK_THROWS_WITH(etk::check::bits_in_range("bits", 1, 2, 8), Catch::Contains("'bits'"));
  CHECK_THROWS_WITH(etk::check::bits_in_range("bits", 9, 2, 8), Catch::Contains("got 9"));
}

TEST_CASE("heads_layout rejects views whose extent overflows an index, before computing it") {
  // Never dereferenced: only the layout arithmetic is checked.
  static float anchor = 0.0f;
  const float* p = &anchor;
  const std::ptrdiff_t big = std::numeric_limits<std::ptrdiff_t>::max() / 4;
  CHECK_THROWS_WITH(etk::check::heads_layout("q", etk::HeadsView<const float>(p, 1, big, 8, big, 0)),
                    Catch::Contains("'q'") && Catch::Contains("index"));
  CHECK_THROWS_WITH(etk::check::heads_layout("k", etk::HeadsView<const float>(p, 2, 8, 8, 8, big * 3)),
                    Catch::Contains("'k'") && Catch::Contains("index"));
  CHECK_THROWS_WITH(etk::check::heads_layout("v", etk::HeadsView<const float>(p, big, big, big, big, big)),
                    Catch::Contains("'v'"));
  CHECK_THROWS_WITH(etk::check::heads_layout("v", etk::HeadsView<const float>(nullptr, 1, 2, 3)),
                    Catch::Contains("null"));
  // The interleaved test must not overflow either: (heads - 1) * head_stride huge.
  CHECK_THROWS_AS(etk::check::heads_layout("o", etk::HeadsView<const float>(p, 3, 1, 8, 8, big)),
                  etk::invalid_argument);
}

namespace {
// Every element offset of a view, for the brute-force twin of no_overlap.
std::vector<std::ptrdiff_t> offsets(const etk::HeadsView<const float>& v, const float* base) {
  std::vector<std::ptrdiff_t> out;
  for (std::ptrdiff_t h = 0; h < v.heads; ++h)
    for (std::ptrdiff_t i = 0; i < v.seq; ++i)
      for (std::ptrdiff_t d = 0; d < v.dim; ++d) out.push_back(v.row(h, i) + d - base);
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("no_overlap agrees with a brute-force element comparison on random strided views") {
  std::mt19937 rng(5);
  std::vector<float> buf(4096);
  std::uniform_int_distribution<int> small(1, 4), off(0, 200);
  int overlapping = 0, apart = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto random_view = [&]() {
      const std::ptrdiff_t heads = small(rng), seq = small(rng), dim = small(rng);
      // Head-major or interleaved strides, sometimes tight, sometimes padded.
      const bool interleaved = rng() % 2;
      const std::ptrdiff_t pad = rng() % 3;
      std::ptrdiff_t rs, hs;
      if (interleaved) {
        hs = dim + pad;
        rs = (heads - 1) * hs + dim + std::ptrdiff_t(rng() % 3);
      } else {
        rs = dim + pad;
        hs = seq * rs + std::ptrdiff_t(rng() % 3);
      }
      return etk::HeadsView<const float>(buf.data() + off(rng), heads, seq, dim, rs, hs);
    };
    const auto a = random_view(), b = random_view();
    REQUIRE_NOTHROW(etk::check::heads_layout("a", a));
    REQUIRE_NOTHROW(etk::check::heads_layout("b", b));
    const auto ea = offsets(a, buf.data()), eb = offsets(b, buf.data());
    std::vector<std::ptrdiff_t> common;
    std::set_intersection(ea.begin(), ea.end(), eb.begin(), eb.end(), std::back_inserter(common));
    if (common.empty()) {
      ++apart;
      CHECK_NOTHROW(etk::check::no_overlap("a", a, "b", b));
    } else {
      ++overlapping;
      CHECK_THROWS_WITH(etk::check::no_overlap("a", a, "b", b), Catch::Contains("'a' overlaps argument 'b'"));
    }
  }
  // Both outcomes occur often enough for the comparison to mean something.
  CHECK(overlapping > 300);
  CHECK(apart > 300);
}

TEST_CASE("rows_disjoint rejects output rows that share elements") {
  CHECK_NOTHROW(etk::check::rows_disjoint("out", 3, 4, 4));
  CHECK_NOTHROW(etk::check::rows_disjoint("out", 1, 4, 0));
  CHECK_THROWS_WITH(etk::check::rows_disjoint("out", 2, 4, 0), Catch::Contains("'out'"));
  CHECK_THROWS_WITH(etk::check::rows_disjoint("out", 2, 4, 3), Catch::Contains("overlap"));
}
