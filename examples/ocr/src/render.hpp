// render.hpp: text lines -> model input, the way PaddleOCR's recogniser sees a crop.
// FreeType draws the line in black on white (anti-aliased) with a DejaVu font; then
// PaddleOCR's preprocessing: resize to height 48 keeping the aspect ratio (bilinear,
// squeezed to the target width if wider), x/255 -> (x - 0.5)/0.5, pad right with 0.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "utf8.hpp"

namespace ocr {

struct GrayImage {
  int h = 0, w = 0;
  std::vector<unsigned char> px;  // row-major, 255 = white
};

class Renderer {
 public:
  // fonts: TrueType files used in turn (line i uses fonts[i % n]). pixel_size: the
  // FreeType pixel size; the crop is the line's height plus a small margin.
  explicit Renderer(std::vector<std::string> fonts, int pixel_size = 32);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  GrayImage render(const std::string& utf8, int font_index) const;
  static std::vector<std::string> default_fonts();  // DejaVu Sans, DejaVu Serif

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// PaddleOCR recogniser preprocessing: returns [3, 48, width] floats.
std::vector<float> preprocess(const GrayImage& img, int width, int height = 48);

using examples::utf8_decode;  // examples/shared/src/utf8.hpp
using examples::utf8_encode;

}  // namespace ocr
