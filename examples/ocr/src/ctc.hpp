// ctc.hpp: PP-OCR's character dictionary and greedy CTC decoding.
// Classes: 0 = blank, 1..n = the dictionary's lines in order, n+1 = space.
#pragma once

#include <string>
#include <vector>

namespace ocr {

class Dictionary {
 public:
  static Dictionary load(const std::string& path);  // one UTF-8 character per line
  explicit Dictionary(std::vector<std::string> chars) : chars_(std::move(chars)) {}
  int classes() const { return int(chars_.size()) + 2; }
  const std::string& symbol(int cls) const;  // "" for the blank
 private:
  std::vector<std::string> chars_;
  std::string space_ = " ", blank_;
};

// Greedy CTC: argmax per step, merge repeats, drop blanks. probs: [T, classes].
std::vector<int> ctc_greedy(const float* probs, int T, int classes);
std::string ctc_text(const std::vector<int>& labels, const Dictionary& dict);

// Levenshtein distance between two code-point sequences.
int edit_distance(const std::u32string& a, const std::u32string& b);

}  // namespace ocr
