// text.hpp: the lines the report reads. Reuters-21578 articles (examples/shared's
// reader) or any UTF-8 text file, greedily word-wrapped to a maximum number of characters.
#pragma once

#include <string>
#include <vector>

#include "reuters.hpp"

namespace ocr {

using examples::reuters_articles;  // examples/shared/src/reuters.hpp
// Paragraphs of a UTF-8 text file (blank-line separated; each collapsed to one line).
// A file of several lines and no blank line between them is taken line by line (each
// line a paragraph), so that the held-out calibration pool, made of the paragraphs after
// the scored ones, is not empty; that is said once per file on stderr.
std::vector<std::string> text_file_paragraphs(const std::string& path);
// Greedy word wrap of each text to lines of at most max_chars code points (longer words
// are cut); whitespace is collapsed. Lines are returned in order; `source`, if given,
// receives the index in `texts` of each line's text.
std::vector<std::string> wrap_lines(const std::vector<std::string>& texts, int max_chars,
                                    std::vector<int>* source = nullptr);

}  // namespace ocr
