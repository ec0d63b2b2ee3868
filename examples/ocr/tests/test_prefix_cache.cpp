// The prefix cache (src/prefix_cache.hpp) and the runner's checkpoints: a run resumed
// from the float model's checkpoint before a changed layer gives bit for bit the
// probabilities of a full run of the changed model, for convs early and late, a
// depthwise conv, a transformer linear and the head, one or several layers at once, in
// any order of calls and from two threads at once; bad input is rejected.
#include <cmath>
#include <thread>

#include "ocr_test_util.hpp"
#include "prefix_cache.hpp"

using namespace ocr;

namespace {

// Symmetric per-output-channel rounding of the weights to `bits` (a stand-in for any
// quantizer: the cache must not care what the weights become).
WeightsFn quantize_to(int bits) {
  return [bits](const LayerInfo&, etk::MatrixView<float> w, float*) {
    const float qmax = float((1 << (bits - 1)) - 1);
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
      const float m = w.row(r).cwiseAbs().maxCoeff();
      if (m == 0) continue;
      const float s = m / qmax;
      for (Eigen::Index c = 0; c < w.cols(); ++c) w(r, c) = std::round(w(r, c) / s) * s;
    }
  };
}

// fn on the listed layers only, the others untouched: what the cache promises to match.
WeightsFn only(const std::vector<int>& layers, WeightsFn fn) {
  auto names = std::make_shared<std::vector<std::string>>();
  for (int l : layers) names->push_back(ocr_test::model().layers[size_t(l)].info.name);
  return [names, fn](const LayerInfo& l, etk::MatrixView<float> w, float* b) {
    if (std::find(names->begin(), names->end(), l.name) != names->end()) fn(l, w, b);
  };
}

struct Lines {
  std::vector<std::vector<float>> images;
  std::vector<const float*> ptrs;
  Lines() {
    for (int i : {0, 2}) images.push_back(ocr_test::render_line(i));
    for (const auto& im : images) ptrs.push_back(im.data());
  }
};

std::vector<Probs> full_runs(const Model& m, const Lines& lines) {
  Runner r(m);
  std::vector<Probs> out(lines.ptrs.size());
  for (size_t i = 0; i < out.size(); ++i) r.run(lines.ptrs[i], 320, Hooks{}, out[i]);
  return out;
}

void require_identical(const std::vector<Probs>& a, const std::vector<Probs>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].T == b[i].T);
    CHECK(ocr_test::max_abs_diff(a[i], b[i]) == 0.f);
  }
}

// One layer of each kind and position: the first conv, a depthwise conv, a late conv, a
// transformer linear of block 1 and the head.
std::vector<int> probe_layers() {
  const Model& m = ocr_test::model();
  std::vector<int> out{0};
  int depthwise = -1, late = -1, fc1 = -1, head = -1;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerInfo& i = m.layers[l].info;
    if (i.kind == LayerInfo::Kind::Depthwise && depthwise < 0) depthwise = int(l);
    if (i.kind == LayerInfo::Kind::Conv && !i.transformer() && i.role != "head") late = int(l);
    if (i.role == "fc1" && i.block == 1) fc1 = int(l);
    if (i.role == "head") head = int(l);
  }
  for (int l : {depthwise, late, fc1, head}) {
    REQUIRE(l >= 0);
    out.push_back(l);
  }
  return out;
}

}  // namespace

TEST_CASE("checkpoints: a run resumed at any layer's step reproduces the full run", "[ocr][prefix]") {
  const Model& m = ocr_test::model();
  const Lines lines;
  std::vector<int> steps;
  for (size_t l = 0; l < m.layers.size(); ++l) steps.push_back(m.first_step_of(int(l)));
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  REQUIRE(steps.size() > 20);
  CHECK(m.live_buffers(m.transformer_step) == m.cache_buffers);
  Runner r(m);
  Probs full, resumed;
  std::vector<Checkpoint> cps;
  r.run(lines.ptrs[0], 320, Hooks{}, full, steps, cps);
  REQUIRE(cps.size() == steps.size());
  Probs other;
  r.run(lines.ptrs[1], 320, Hooks{}, other);  // scratch reuse must not leak into a resumed run
  for (const auto& cp : cps) {
    r.run_from(cp, Hooks{}, resumed);
    CHECK(ocr_test::max_abs_diff(full, resumed) == 0.f);
  }
}

TEST_CASE("prefix cache: one quantized layer matches a full run of the rebuilt model", "[ocr][prefix]") {
  const Model& m = ocr_test::model();
  const Lines lines;
  PrefixCache cache(m, lines.ptrs, 320);
  require_identical(cache.base_probs(), full_runs(m, lines));
  CHECK(cache.lines() == 2);
  CHECK(cache.checkpoint_bytes() > 0);
  for (int l : probe_layers())
    for (int bits : {8, 4, 2}) {
      INFO("layer " << m.layers[size_t(l)].info.name << " at " << bits << " bits");
      const auto got = cache.forward({l}, quantize_to(bits));
      const auto want = full_runs(m.with_weights(only({l}, quantize_to(bits))), lines);
      require_identical(got, want);
      if (bits == 2) CHECK(ocr_test::max_abs_diff(got[0], cache.base_probs()[0]) > 0.f);  // it did change
    }
}

TEST_CASE("prefix cache: several layers, repeated calls and two threads", "[ocr][prefix]") {
  const Model& m = ocr_test::model();
  const Lines lines;
  PrefixCache cache(m, lines.ptrs, 320);
  const auto layers = probe_layers();
  const std::vector<int> pair = {layers[3], layers[1]};  // unordered on purpose
  const auto want = full_runs(m.with_weights(only(pair, quantize_to(3))), lines);
  require_identical(cache.forward(pair, quantize_to(3)), want);
  // The working copy is restored: the float model again, then the same answer again.
  require_identical(cache.forward({}, quantize_to(3)), cache.base_probs());
  require_identical(cache.forward({layers[3]}, [](const LayerInfo&, etk::MatrixView<float>, float*) {}),
                    cache.base_probs());
  require_identical(cache.forward(pair, quantize_to(3)), want);
  // Two threads at once, each with a different layer.
  std::vector<Probs> a, b;
  std::thread t([&] { a = cache.forward({layers[0]}, quantize_to(4)); });
  b = cache.forward({layers[2]}, quantize_to(4));
  t.join();
  require_identical(a, full_runs(m.with_weights(only({layers[0]}, quantize_to(4))), lines));
  require_identical(b, full_runs(m.with_weights(only({layers[2]}, quantize_to(4))), lines));
}

TEST_CASE("prefix cache and checkpoints: bad input", "[ocr][prefix]") {
  const Model& m = ocr_test::model();
  const Lines lines;
  PrefixCache cache(m, lines.ptrs, 320);
  CHECK_THROWS_AS(cache.forward({int(m.layers.size())}, quantize_to(4)), model_error);
  CHECK_THROWS_AS(cache.forward({-1}, quantize_to(4)), model_error);
  // A throwing weights function leaves the working copy as the base model.
  CHECK_THROWS_AS(cache.forward({0}, [](const LayerInfo&, etk::MatrixView<float> w, float*) {
                    w.setZero();
                    throw std::runtime_error("quantizer failed");
                  }),
                  std::runtime_error);
  require_identical(cache.forward({0}, [](const LayerInfo&, etk::MatrixView<float>, float*) {}), cache.base_probs());
  Runner r(m);
  Probs p;
  std::vector<Checkpoint> cps;
  CHECK_THROWS_AS(r.run(lines.ptrs[0], 320, Hooks{}, p, {5, 3}, cps), model_error);  // not ascending
  CHECK_THROWS_AS(r.run(lines.ptrs[0], 320, Hooks{}, p, {0}, cps), model_error);     // before the input
  Checkpoint bad;
  bad.step = m.transformer_step;  // no buffers
  CHECK_THROWS_AS(r.run_from(bad, Hooks{}, p), model_error);
  bad.step = int(m.steps.size());
  CHECK_THROWS_AS(r.run_from(bad, Hooks{}, p), model_error);
  CHECK_THROWS_AS(m.live_buffers(-1), model_error);
}
