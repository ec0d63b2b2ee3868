// reuters_arff.cpp: see reuters_arff.hpp.
#include "reuters_arff.hpp"

#include <sstream>
#include <stdexcept>

#include "cache.hpp"
#include "reuters.hpp"
#include "utf8.hpp"

namespace examples {

std::string reuters_arff_dir_from_env() {
  const char* e = std::getenv("ETK_REUTERS_ARFF_DIR");
  if (e && *e) return e;
  return etk_cache_dir() + "/weka/usr/share/doc/weka/examples";
}

std::vector<std::string> read_arff_texts(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> texts;
  bool data = false;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!data) {
      data = line.rfind("@data", 0) == 0;
      continue;
    }
    if (line.empty()) continue;
    auto bad = [&](const char* what) {
      return std::runtime_error(path + ":" + std::to_string(number) + ": " + what);
    };
    if (line[0] != '\'') throw bad("a data row must start with a quoted string");
    std::u32string text;
    std::size_t i = 1;
    for (; i < line.size() && line[i] != '\''; ++i) {
      unsigned char c = static_cast<unsigned char>(line[i]);
      if (c == '\\') {
        if (++i == line.size()) throw bad("the row ends inside an escape");
        switch (line[i]) {
          case 'n': case 'r': case 't': c = ' '; break;
          case '\'': case '\\': case '"': c = static_cast<unsigned char>(line[i]); break;
          default: throw bad("unknown escape");
        }
      }
      text.push_back(c);  // Latin-1: each byte is its code point
    }
    if (i == line.size() || line.find(',', i) == std::string::npos) throw bad("the quoted text is not followed by ',label'");
    texts.push_back(collapse_whitespace(utf8_encode(text)));
  }
  if (!data) throw std::runtime_error(path + ": no @data section");
  return texts;
}

std::vector<std::string> reuters_arff_sentences(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* f : {"/ReutersCorn-train.arff", "/ReutersCorn-test.arff"})
    for (const auto& text : read_arff_texts(dir + f))
      for (auto& s : split_sentences(text)) out.push_back(std::move(s));
  return out;
}

}  // namespace examples
