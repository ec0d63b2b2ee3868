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

namespace ocr {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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

std::string collapse(const std::string& s) {
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

}  // namespace

std::vector<std::string> reuters_articles(const std::string& texts_dir) {
  std::vector<std::string> out;
  for (const char* topic : {"crude", "acq"}) {
    const std::string dir = texts_dir + "/" + topic;
    for (const auto& name : list_dir(dir)) {
      const std::string xml = read_all(dir + "/" + name);
      size_t b = xml.find("<BODY>"), e = xml.find("</BODY>");
      if (b == std::string::npos || e == std::string::npos || e < b) continue;
      std::string body = collapse(decode_entities(latin1_to_utf8(xml.substr(b + 6, e - b - 6))));
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

std::vector<std::string> text_file_paragraphs(const std::string& path) {
  const std::string all = read_all(path);
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(all);
  std::string line;
  auto flush = [&] {
    std::string c = collapse(cur);
    if (!c.empty()) out.push_back(c);
    cur.clear();
  };
  std::vector<std::string> lines;  // the non-blank lines, collapsed
  while (std::getline(in, line)) {
    if (collapse(line).empty()) flush();
    else {
      cur += line + " ";
      lines.push_back(collapse(line));
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
    const auto cps = utf8_decode(collapse(t));
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
