// reuters.cpp: see reuters.hpp.
#include "reuters.hpp"

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "utf8.hpp"

namespace examples {

namespace {

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) throw std::runtime_error("cannot list '" + dir + "' (run scripts/report, or set ETK_REUTERS_DIR)");
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".xml") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string latin1_to_utf8(const std::string& s) {
  std::u32string u;
  for (unsigned char c : s) u.push_back(c);
  return utf8_encode(u);
}

std::string decode_entities(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      size_t e = s.find(';', i);
      if (e != std::string::npos && e - i <= 8) {
        std::string ent = s.substr(i + 1, e - i - 1);
        std::string rep;
        if (ent == "lt") rep = "<";
        else if (ent == "gt") rep = ">";
        else if (ent == "amp") rep = "&";
        else if (ent == "quot") rep = "\"";
        else if (ent == "apos") rep = "'";
        else if (!ent.empty() && ent[0] == '#') {
          long v = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                                       : std::strtol(ent.c_str() + 1, nullptr, 10);
          rep = utf8_encode(std::u32string(1, char32_t(v)));
        }
        if (!rep.empty()) {
          o += rep;
          i = e;
          continue;
        }
      }
    }
    o += s[i];
  }
  return o;
}

bool is_upper_ascii(char c) { return c >= 'A' && c <= 'Z'; }

// True when the word that ends at text[end] (the '.') is an abbreviation, not a sentence end.
bool abbreviation_before(const std::string& text, size_t end) {
  size_t b = end;
  while (b > 0 && text[b - 1] != ' ') --b;
  const std::string word = text.substr(b, end + 1 - b);
  static const char* const known[] = {"Mr.", "Mrs.", "Ms.", "Dr.", "Inc.", "Corp.", "Co.", "Ltd.",
                                      "Jan.", "Feb.", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.",
                                      "St.", "Jr.", "No.", "vs.", "U.S.", "U.K.", "Bhd."};
  for (const char* k : known)
    if (word == k) return true;
  return word.size() == 2 && is_upper_ascii(word[0]);  // an initial: "J. Smith"
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string collapse_whitespace(const std::string& s) {
  std::string o;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') space = !o.empty();
    else {
      if (space) o += ' ';
      space = false;
      o += c;
    }
  }
  return o;
}

std::vector<std::string> reuters_articles(const std::string& texts_dir) {
  std::vector<std::string> out;
  for (const char* topic : {"crude", "acq"}) {
    const std::string dir = texts_dir + "/" + topic;
    for (const auto& name : list_dir(dir)) {
      const std::string xml = read_file(dir + "/" + name);
      size_t b = xml.find("<BODY>"), e = xml.find("</BODY>");
      if (b == std::string::npos || e == std::string::npos || e < b) continue;
      std::string body = collapse_whitespace(decode_entities(latin1_to_utf8(xml.substr(b + 6, e - b - 6))));
      for (const char* tail : {"Reuter", "REUTER"}) {
        const std::string t = tail;
        if (body.size() >= t.size() && body.compare(body.size() - t.size(), t.size(), t) == 0) {
          body.erase(body.size() - t.size());
          while (!body.empty() && body.back() == ' ') body.pop_back();
        }
      }
      if (!body.empty()) out.push_back(body);
    }
  }
  if (out.empty()) throw std::runtime_error("no Reuters articles under '" + texts_dir + "'");
  return out;
}

std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t e = i + 1;
    while (e < text.size() && (text[e] == '"' || text[e] == '\'' || text[e] == ')')) ++e;
    if (e + 1 >= text.size() || text[e] != ' ') continue;
    const char next = text[e + 1];
    if (!is_upper_ascii(next) && !(next >= '0' && next <= '9') && next != '"') continue;
    if (c == '.' && abbreviation_before(text, i)) continue;
    out.push_back(text.substr(start, e - start));
    start = e + 1;
    i = e;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

std::vector<std::string> reuters_sentences(const std::string& texts_dir) {
  std::vector<std::string> out;
  for (const auto& article : reuters_articles(texts_dir))
    for (auto& s : split_sentences(article)) out.push_back(std::move(s));
  return out;
}

}  // namespace examples
