// render.cpp: see render.hpp.
#include "render.hpp"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "onnx_model.hpp"

namespace ocr {

struct Renderer::Impl {
  FT_Library lib = nullptr;
  std::vector<FT_Face> faces;
  int pixel_size = 32;
};

Renderer::Renderer(std::vector<std::string> fonts, int pixel_size) : impl_(new Impl) {
  impl_->pixel_size = pixel_size;
  if (FT_Init_FreeType(&impl_->lib)) throw std::runtime_error("FreeType initialisation failed");
  if (fonts.empty()) throw std::runtime_error("no font given");
  for (const auto& f : fonts) {
    FT_Face face;
    if (FT_New_Face(impl_->lib, f.c_str(), 0, &face))
      throw std::runtime_error("cannot load font '" + f + "' (install fonts-dejavu-core?)");
    FT_Set_Pixel_Sizes(face, 0, pixel_size);
    impl_->faces.push_back(face);
  }
}

Renderer::~Renderer() {
  for (auto f : impl_->faces) FT_Done_Face(f);
  if (impl_->lib) FT_Done_FreeType(impl_->lib);
}

std::vector<std::string> Renderer::default_fonts() {
  return {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"};
}

GrayImage Renderer::render(const std::string& utf8, int font_index) const {
  FT_Face face = impl_->faces[size_t(font_index) % impl_->faces.size()];
  const auto cps = utf8_decode(utf8);
  const int asc = int(face->size->metrics.ascender >> 6), desc = int(-(face->size->metrics.descender >> 6));
  const int margin_y = std::max(2, impl_->pixel_size / 8), margin_x = margin_y;
  const bool kern = FT_HAS_KERNING(face);
  // Lays the glyphs out left to right (kerning, then each glyph's advance), calling
  // on_glyph(slot, pen) for each glyph that loads: once to measure, once to draw.
  auto lay_out = [&](FT_Int32 load_flags, auto&& on_glyph) {
    long pen = 0;
    FT_UInt prev = 0;
    for (char32_t c : cps) {
      FT_UInt gi = FT_Get_Char_Index(face, c);
      if (kern && prev && gi) {
        FT_Vector d;
        FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &d);
        pen += d.x;
      }
      if (FT_Load_Glyph(face, gi, load_flags)) continue;
      on_glyph(face->glyph, pen);
      pen += face->glyph->advance.x;
      prev = gi;
    }
    return pen;
  };
  const long width = lay_out(FT_LOAD_DEFAULT, [](FT_GlyphSlot, long) {});
  GrayImage img;
  img.h = asc + desc + 2 * margin_y;
  img.w = std::max<int>(1, int((width + 63) >> 6) + 2 * margin_x);
  img.px.assign(size_t(img.h) * img.w, 255);
  lay_out(FT_LOAD_RENDER, [&](FT_GlyphSlot g, long pen) {
    const int x0 = margin_x + int(pen >> 6) + g->bitmap_left;
    const int y0 = margin_y + asc - g->bitmap_top;
    for (unsigned r = 0; r < g->bitmap.rows; ++r)
      for (unsigned q = 0; q < g->bitmap.width; ++q) {
        const int y = y0 + int(r), x = x0 + int(q);
        if (y < 0 || y >= img.h || x < 0 || x >= img.w) continue;
        const unsigned char cov = g->bitmap.buffer[r * g->bitmap.pitch + q];
        unsigned char& p = img.px[size_t(y) * img.w + x];
        p = std::min<int>(p, 255 - cov);
      }
  });
  return img;
}

std::vector<float> preprocess(const GrayImage& img, int width, int height) {
  if (img.h <= 0 || img.w <= 0) throw std::runtime_error("preprocess: empty image");
  const double ratio = double(img.w) / img.h;
  int rw = int(std::ceil(height * ratio));
  if (rw > width) rw = width;
  std::vector<float> out(size_t(3) * height * width, 0.f);
  // Bilinear resize with half-pixel centres (as OpenCV's INTER_LINEAR).
  const double sx = double(img.w) / rw, sy = double(img.h) / height;
  for (int y = 0; y < height; ++y) {
    double fy = (y + 0.5) * sy - 0.5;
    int y0 = int(std::floor(fy));
    double wy = fy - y0;
    int ya = std::clamp(y0, 0, img.h - 1), yb = std::clamp(y0 + 1, 0, img.h - 1);
    if (fy < 0) { ya = yb = 0; wy = 0; }
    for (int x = 0; x < rw; ++x) {
      double fx = (x + 0.5) * sx - 0.5;
      int x0 = int(std::floor(fx));
      double wx = fx - x0;
      int xa = std::clamp(x0, 0, img.w - 1), xb = std::clamp(x0 + 1, 0, img.w - 1);
      if (fx < 0) { xa = xb = 0; wx = 0; }
      const double v = (1 - wy) * ((1 - wx) * img.px[size_t(ya) * img.w + xa] + wx * img.px[size_t(ya) * img.w + xb]) +
                       wy * ((1 - wx) * img.px[size_t(yb) * img.w + xa] + wx * img.px[size_t(yb) * img.w + xb]);
      const float n = (float(v) / 255.f - 0.5f) / 0.5f;
      for (int c = 0; c < 3; ++c) out[(size_t(c) * height + y) * width + x] = n;
    }
  }
  return out;
}

}  // namespace ocr
