// ocr_test_util.hpp: shared set-up of the OCR runner tests: the model from ETK_MODEL_DIR
// (a clear failure if it is missing) and a few rendered lines.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "ctc.hpp"
#include "dataset.hpp"
#include "model.hpp"
#include "render.hpp"

namespace ocr_test {

inline const std::string& model_dir() {
  static std::string dir = [] {
    try {
      return ocr::model_dir_from_env();
    } catch (const std::exception& e) {
      FAIL(e.what());
      return std::string();
    }
  }();
  return dir;
}

inline const ocr::Model& model() {
  static ocr::Model m = ocr::Model::load(model_dir() + "/ch_PP-OCRv4_rec_infer.onnx");
  return m;
}

inline const ocr::Dictionary& dict() {
  static ocr::Dictionary d = ocr::Dictionary::load(model_dir() + "/ppocr_keys_v1.txt");
  return d;
}

// Lines written for these tests (not from the report's corpus).
inline const std::vector<std::string>& sample_lines() {
  static const std::vector<std::string> l = {"The quick brown fox", "jumps over 13 lazy", "dogs, said Reuters.",
                                             "Oil rose 1.50 dlrs"};
  return l;
}

inline std::vector<float> render_line(int i, int width = 320) {
  static ocr::Renderer r(ocr::Renderer::default_fonts());
  return ocr::preprocess(r.render(sample_lines()[size_t(i)], i), width);
}

inline float max_abs_diff(const ocr::Probs& a, const ocr::Probs& b) {
  REQUIRE(a.p.size() == b.p.size());
  float m = 0;
  for (size_t i = 0; i < a.p.size(); ++i) m = std::max(m, std::abs(a.p[i] - b.p[i]));
  return m;
}

}  // namespace ocr_test
