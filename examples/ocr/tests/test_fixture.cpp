// The C++ runner against the reference runtime (onnxruntime 1.30 fp32) on the very images
// in the fixture (written by tools/make-fixtures): the top-8 probabilities of every step
// and the full distribution of the middle step, max abs error <= 1e-4 (the bar).
#include <cstdint>
#include <cstring>
#include <fstream>

#include "ocr_test_util.hpp"

namespace {

struct FixtureLine {
  int width = 0, T = 0, C = 0, K = 0;
  std::vector<float> image;             // [3, 48, width]
  std::vector<std::pair<uint32_t, float>> topk;  // [T, K]
  std::vector<float> middle;            // [C] at step T/2
};

std::vector<FixtureLine> read_fixture(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  auto u32 = [&f] { uint32_t v = 0; f.read(reinterpret_cast<char*>(&v), 4); return v; };
  char magic[4];
  f.read(magic, 4);
  REQUIRE(std::memcmp(magic, "ETKF", 4) == 0);
  const uint32_t n = u32();
  std::vector<FixtureLine> out(n);
  for (auto& l : out) {
    l.width = int(u32()); l.T = int(u32()); l.C = int(u32()); l.K = int(u32());
    std::vector<uint16_t> gray2(size_t(48) * l.width);
    f.read(reinterpret_cast<char*>(gray2.data()), gray2.size() * 2);
    l.image.resize(3 * gray2.size());
    for (size_t p = 0; p < gray2.size(); ++p)
      for (int c = 0; c < 3; ++c) l.image[c * gray2.size() + p] = float(gray2[p]) / 255.f - 1.f;
    l.topk.resize(size_t(l.T) * l.K);
    for (auto& e : l.topk) {
      e.first = u32();
      f.read(reinterpret_cast<char*>(&e.second), 4);
    }
    l.middle.resize(l.C);
    f.read(reinterpret_cast<char*>(l.middle.data()), l.C * 4);
  }
  REQUIRE(f.good());
  return out;
}

}  // namespace

TEST_CASE("runner matches the reference runtime's probabilities", "[ocr][fixture]") {
  const auto lines = read_fixture(std::string(ETK_OCR_FIXTURES) + "/probs.bin");
  REQUIRE(lines.size() >= 2);
  ocr::Runner r(ocr_test::model());
  for (const auto& l : lines) {
    INFO("width " << l.width);
    ocr::Probs p;
    r.run(l.image.data(), l.width, ocr::Hooks{}, p);
    REQUIRE(p.T == l.T);
    REQUIRE(p.classes == l.C);
    float err = 0;
    for (int t = 0; t < l.T; ++t) {
      for (int k = 0; k < l.K; ++k) {
        const auto& e = l.topk[size_t(t) * l.K + k];
        err = std::max(err, std::abs(p.row(t)[e.first] - e.second));
      }
      // Same greedy decision at every step (the top-1 class) unless the two best tie.
      const float* row = p.row(t);
      const int best = int(std::max_element(row, row + p.classes) - row);
      const auto& top = l.topk[size_t(t) * l.K];
      const auto& second = l.topk[size_t(t) * l.K + 1];
      if (top.second - second.second > 2e-4f) CHECK(best == int(top.first));
    }
    const float* mid = p.row(l.T / 2);
    for (int c = 0; c < l.C; ++c) err = std::max(err, std::abs(mid[c] - l.middle[c]));
    UNSCOPED_INFO("max abs err " << err);
    CHECK(err <= 1e-4f);
  }
}
