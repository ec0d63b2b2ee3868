// cli.hpp: the small command-line parser shared by the OCR programs.
// "--name value" options (repeatable), "--flag" switches, and positional arguments.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataset.hpp"

namespace ocr {

class Cli {
 public:
  // flags: names that take no value.
  Cli(int argc, char** argv, std::vector<std::string> flags = {"verbose", "help", "no-long", "quiet"}) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) == 0) {
        std::string name = a.substr(2), value;
        const size_t eq = name.find('=');
        bool is_flag = false;
        for (const auto& f : flags) is_flag |= f == name;
        if (eq != std::string::npos) {
          value = name.substr(eq + 1);
          name = name.substr(0, eq);
        } else if (!is_flag) {
          if (i + 1 >= argc) throw std::invalid_argument("option --" + name + " needs a value");
          value = argv[++i];
        } else {
          value = "1";
        }
        opts_[name].push_back(value);
      } else {
        pos_.push_back(a);
      }
    }
  }
  bool flag(const std::string& n) const { return opts_.count(n) != 0; }
  std::string get(const std::string& n, const std::string& def) const {
    auto it = opts_.find(n);
    return it == opts_.end() ? def : it->second.back();
  }
  std::vector<std::string> all(const std::string& n) const {
    auto it = opts_.find(n);
    return it == opts_.end() ? std::vector<std::string>{} : it->second;
  }
  int geti(const std::string& n, int def) const {
    const std::string v = get(n, "");
    if (v.empty()) return def;
    size_t used = 0;
    int r = 0;
    try { r = std::stoi(v, &used); } catch (...) { used = 0; }
    if (used != v.size()) throw std::invalid_argument("option --" + n + " needs an integer, got '" + v + "'");
    return r;
  }
  std::string positional(size_t i, const char* what) const {
    if (i >= pos_.size()) throw std::invalid_argument(std::string("missing argument ") + what);
    return pos_[i];
  }
  DataOptions data_options() const {
    DataOptions o;
    o.text_file = get("text", "");
    o.fonts = all("font");
    o.lines = geti("lines", o.lines);
    o.width = geti("width", o.width);
    o.max_chars = geti("chars", o.max_chars);
    o.skip = geti("skip", 0);
    return o;
  }

 private:
  std::map<std::string, std::vector<std::string>> opts_;
  std::vector<std::string> pos_;
};

}  // namespace ocr
