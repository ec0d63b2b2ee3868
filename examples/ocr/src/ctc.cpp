// ctc.cpp: see ctc.hpp.
#include "ctc.hpp"

#include <algorithm>
#include <fstream>

#include "onnx_model.hpp"

namespace ocr {

Dictionary Dictionary::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw model_error("cannot open dictionary '" + path + "'");
  std::vector<std::string> chars;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    chars.push_back(line);
  }
  if (chars.empty()) throw model_error("dictionary '" + path + "' is empty");
  return Dictionary(std::move(chars));
}

const std::string& Dictionary::symbol(int cls) const {
  if (cls <= 0) return blank_;
  if (cls <= int(chars_.size())) return chars_[cls - 1];
  return space_;
}

std::vector<int> ctc_greedy(const float* probs, int T, int classes) {
  std::vector<int> out;
  int prev = -1;
  for (int t = 0; t < T; ++t) {
    const float* r = probs + size_t(t) * classes;
    const int best = int(std::max_element(r, r + classes) - r);
    if (best != 0 && best != prev) out.push_back(best);
    prev = best;
  }
  return out;
}

std::string ctc_text(const std::vector<int>& labels, const Dictionary& dict) {
  std::string s;
  for (int l : labels) s += dict.symbol(l);
  return s;
}

int edit_distance(const std::u32string& a, const std::u32string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = int(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = int(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace ocr
