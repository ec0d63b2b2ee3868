// reuters.hpp: the Reuters-21578 articles of Debian's r-cran-tm (<dir>/crude and
// <dir>/acq, files in name order): <BODY> text, Latin-1 -> UTF-8, XML entities decoded,
// whitespace collapsed, the trailing "Reuter" dropped. Also the text helpers the examples
// build on them: reading a file, collapsing whitespace, splitting into sentences.
#pragma once

#include <string>
#include <vector>

namespace examples {

// The whole file; throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::string& path);
// Runs of spaces, tabs and newlines -> one space; no leading or trailing space.
std::string collapse_whitespace(const std::string& s);
// Article bodies as UTF-8, in order (crude, then acq).
std::vector<std::string> reuters_articles(const std::string& texts_dir);
// Sentences of a collapsed text: a sentence ends at '.', '!' or '?' (and any closing
// quotes or brackets after it) followed by a space and an upper-case letter, a digit or
// an opening quote, unless the word ending with '.' is a single letter or one of a few
// abbreviations (Mr., Mrs., Dr., Inc., Corp., Co., Ltd., U.S., ...).
std::vector<std::string> split_sentences(const std::string& text);
// split_sentences over every article.
std::vector<std::string> reuters_sentences(const std::string& texts_dir);

}  // namespace examples
