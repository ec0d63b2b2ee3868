// dataset.hpp: a set of rendered, preprocessed lines with their ground truth, plus the
// common command-line options that choose them (--text, --font, --lines, --width), and
// the held-out calibration pool of a set (lines of later articles, never scored).
#pragma once

#include <string>
#include <vector>

#include "cache.hpp"

namespace ocr {

struct DataOptions {
  std::string text_file;           // --text: any UTF-8 file instead of Reuters
  std::vector<std::string> fonts;  // --font (repeatable); default DejaVu Sans + Serif
  int lines = 400;                 // --lines
  int width = 320;                 // --width: model input width (tokens = width / 8)
  int max_chars = 22;              // --chars: word-wrap limit
  int skip = 0;                    // lines skipped before the first one taken
  std::string reuters_dir;         // ETK_REUTERS_DIR
};

struct Dataset {
  std::string name;
  int width = 0;
  std::vector<std::string> truth;
  std::vector<std::vector<float>> images;  // [3, 48, width] each
  std::vector<int> source;                 // the article (paragraph with --text) of each line
  size_t size() const { return truth.size(); }
};

Dataset make_dataset(const DataOptions& o, const std::string& name);

// The article (paragraph) of the last line make_dataset(o) takes, or -1 (wraps only).
int last_source(const DataOptions& o);

// A calibration pool for the set `o` describes: up to `count` lines of o's text, wrapped
// and rendered exactly as make_dataset's (width, characters, fonts alternating), evenly
// spaced over the lines of the articles after `after_source` whose text is not one of
// `exclude`. With after_source = the last article any scored line comes from, the pool
// shares no article, and no line's text, with the scored lines. Fewer lines if the text
// has fewer such lines (none at all is not an error here).
Dataset make_calibration_pool(const DataOptions& o, int count, int after_source,
                              const std::vector<std::string>& exclude, const std::string& name);

// The environment's model / data locations (with the error messages the tests print).
std::string model_dir_from_env();    // ETK_MODEL_DIR
using examples::reuters_dir_from_env;  // examples/shared/src/cache.hpp

}  // namespace ocr
