// tokenizer.cpp: see tokenizer.hpp.
#include "tokenizer.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "etk/config.hpp"
#include "reuters.hpp"
#include "utf8.hpp"

namespace sentence {

namespace {

constexpr int kReservedPieces = 6;  // <unk>-like entries the reference never matches
constexpr char32_t kSeparator = U'\u2581';

}  // namespace

std::string nfkc(const std::string& utf8) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFKCInstance(&err);
  ETK_CHECK(U_SUCCESS(err), "ICU has no NFKC normaliser: " << u_errorName(err));
  int32_t len16 = 0;
  err = U_ZERO_ERROR;
  u_strFromUTF8(nullptr, 0, &len16, utf8.data(), int32_t(utf8.size()), &err);
  ETK_CHECK(err == U_BUFFER_OVERFLOW_ERROR || U_SUCCESS(err),
            "argument 'utf8' is not valid UTF-8 (" << u_errorName(err) << ")");
  std::u16string src(std::size_t(len16), u'\0');
  err = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(&src[0]), len16, nullptr, utf8.data(), int32_t(utf8.size()), &err);
  ETK_CHECK(U_SUCCESS(err), "argument 'utf8' is not valid UTF-8 (" << u_errorName(err) << ")");
  err = U_ZERO_ERROR;
  const int32_t need = unorm2_normalize(n, reinterpret_cast<const UChar*>(src.data()), len16, nullptr, 0, &err);
  std::u16string dst(std::size_t(need), u'\0');
  err = U_ZERO_ERROR;
  unorm2_normalize(n, reinterpret_cast<const UChar*>(src.data()), len16, reinterpret_cast<UChar*>(&dst[0]), need, &err);
  ETK_CHECK(U_SUCCESS(err), "NFKC normalisation failed: " << u_errorName(err));
  int32_t len8 = 0;
  err = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &len8, reinterpret_cast<const UChar*>(dst.data()), need, &err);
  std::string out(std::size_t(len8), '\0');
  err = U_ZERO_ERROR;
  u_strToUTF8(&out[0], len8, nullptr, reinterpret_cast<const UChar*>(dst.data()), need, &err);
  ETK_CHECK(U_SUCCESS(err), "NFKC normalisation failed: " << u_errorName(err));
  return out;
}

Tokenizer Tokenizer::from_file(const std::string& vocab_json) {
  const std::string where = "vocabulary file '" + vocab_json + "'";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(examples::read_file(vocab_json));
  } catch (const std::exception& e) {
    ETK_THROW(where << ": " << e.what());
  }
  ETK_CHECK(j.is_array() && j.size() > std::size_t(kReservedPieces) && j.size() < (std::size_t(1) << 31),
            where << ": not an array of more than " << kReservedPieces << " [piece, score] pairs");
  Tokenizer t;
  t.text_.resize(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    ETK_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && (e[1].is_number() || e[1].is_null()),
              where << ": entry " << i << " is not a [piece, score] pair");
    if (i < std::size_t(kReservedPieces)) continue;
    t.text_[i] = e[0].get<std::string>();
    const auto cps = examples::utf8_decode(t.text_[i]);
    ETK_CHECK(!cps.empty(), where << ": entry " << i << " is an empty piece");
    std::int32_t node = 0;
    for (char32_t c : cps) {
      ETK_CHECK(std::uint32_t(c) < (1u << 21), where << ": entry " << i << " holds a code point past U+1FFFFF");
      const auto edge = t.edges_.emplace((std::uint64_t(node) << 21) | std::uint64_t(c), std::int32_t(t.piece_.size()));
      if (edge.second) t.piece_.push_back(Piece{0.0, -1});
      node = edge.first->second;
    }
    // A null score (vocab.json has some) adds as 0 in the reference's JavaScript; a
    // repeated piece keeps its last entry.
    t.piece_[std::size_t(node)] = Piece{e[1].is_null() ? 0.0 : e[1].get<double>(), std::int32_t(i)};
  }
  return t;
}

std::int32_t Tokenizer::child(std::int32_t node, char32_t c) const {
  if (std::uint32_t(c) >= (1u << 21)) return -1;
  const auto it = edges_.find((std::uint64_t(node) << 21) | std::uint64_t(c));
  return it == edges_.end() ? -1 : it->second;
}

std::vector<std::int32_t> Tokenizer::encode(const std::string& utf8) const {
  const std::string normal = nfkc(utf8);
  std::u32string s;
  if (!normal.empty()) {
    s.push_back(kSeparator);
    for (char32_t c : examples::utf8_decode(normal)) s.push_back(c == U' ' ? kSeparator : c);
  }
  const std::size_t n = s.size();
  // Candidates ending at each position: (start, score, id), starts ascending because the
  // starts are visited in order.
  struct Candidate {
    std::size_t start;
    double score;
    std::int32_t id;
  };
  std::vector<std::vector<Candidate>> ending(n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    bool any = false;
    std::int32_t node = 0;
    for (std::size_t len = 1; i + len <= n && (node = child(node, s[i + len - 1])) >= 0; ++len) {
      const Piece& p = piece_[std::size_t(node)];
      if (p.id < 0) continue;
      ending[i + len].push_back({i, p.score, p.id});
      any = true;
    }
    if (!any) ending[i + 1].push_back({i, 0.0, 0});
  }
  std::vector<double> best(n + 1, 0.0);
  std::vector<std::int32_t> word(n + 1, 0);
  // An end no piece reaches keeps id 0 and steps back one code point, as the reference's
  // defaults (word 0, the length of piece 0) do.
  std::vector<std::size_t> from(n + 1, 0);
  for (std::size_t e = 1; e <= n; ++e) from[e] = e - 1;
  for (std::size_t end = 0; end <= n; ++end) {
    for (const Candidate& c : ending[end]) {
      const double score = c.score + best[c.start];
      if (best[end] == 0.0 || score >= best[end]) {
        best[end] = score;
        word[end] = c.id;
        from[end] = c.start;
      }
    }
  }
  // Read back from the end (the reference steps back by the chosen piece's length).
  std::vector<std::int32_t> ids;
  for (std::size_t at = n; at > 0; at = from[at]) {
    if (!(word[at] == 0 && !ids.empty() && ids.back() == 0)) ids.push_back(word[at]);
  }
  return std::vector<std::int32_t>(ids.rbegin(), ids.rend());
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string out;
  for (std::int32_t id : ids) {
    ETK_CHECK(id >= 0 && std::size_t(id) < text_.size(), "argument 'ids' holds " << id << ", outside [0, "
                                                                                  << text_.size() << ")");
    out += text_[std::size_t(id)];
  }
  return out;
}

}  // namespace sentence
