// text.cpp: see text.hpp.
#include "text.hpp"

#include <algorithm>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "render.hpp"
#include "reuters.hpp"

namespace ocr {

std::vector<std::string> text_file_paragraphs(const std::string& path) {
  const std::string all = examples::read_file(path);
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(all);
  std::string line;
  auto flush = [&] {
    std::string c = examples::collapse_whitespace(cur);
    if (!c.empty()) out.push_back(c);
    cur.clear();
  };
  std::vector<std::string> lines;  // the non-blank lines, collapsed
  while (std::getline(in, line)) {
    if (examples::collapse_whitespace(line).empty()) flush();
    else {
      cur += line + " ";
      lines.push_back(examples::collapse_whitespace(line));
    }
  }
  flush();
  if (out.empty()) throw std::runtime_error("no text in '" + path + "'");
  if (out.size() == 1 && lines.size() > 1) {
    static std::mutex m;
    static std::set<std::string> told;
    std::lock_guard<std::mutex> lock(m);
    if (told.insert(path).second)
      std::fprintf(stderr,
                   "text '%s' has no blank lines between paragraphs: taking each of its %zu lines as a paragraph "
                   "(the scored lines come first, the held-out calibration pool from the lines after them)\n",
                   path.c_str(), lines.size());
    return lines;
  }
  return out;
}

std::vector<std::string> wrap_lines(const std::vector<std::string>& texts, int max_chars,
                                    std::vector<int>* source) {
  std::vector<std::string> lines;
  if (source) source->clear();
  for (size_t ti = 0; ti < texts.size(); ++ti) {
    const std::string& t = texts[ti];
    std::u32string cur;
    std::u32string word;
    auto push = [&](std::u32string& s) {
      if (!s.empty()) {
        lines.push_back(utf8_encode(s));
        if (source) source->push_back(int(ti));
      }
      s.clear();
    };
    auto add_word = [&](std::u32string w) {
      while (int(w.size()) > max_chars) {  // cut words longer than a line
        push(cur);
        std::u32string head = w.substr(0, max_chars);
        push(head);
        w = w.substr(max_chars);
      }
      if (w.empty()) return;
      if (cur.empty()) cur = w;
      else if (int(cur.size() + 1 + w.size()) <= max_chars) cur += U" " + w;
      else {
        push(cur);
        cur = w;
      }
    };
    const auto cps = utf8_decode(examples::collapse_whitespace(t));
    for (char32_t c : cps) {
      if (c == U' ') {
        add_word(word);
        word.clear();
      } else {
        word.push_back(c);
      }
    }
    add_word(word);
    push(cur);
  }
  return lines;
}

}  // namespace ocr
