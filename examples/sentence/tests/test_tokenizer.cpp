// The SentencePiece-unigram tokenizer beyond the fixture: edge cases of the reference's
// rules (tokenizer.hpp) and, over every Reuters sentence, that the pieces spell the
// normalised input (every code point is covered exactly once, in order).
#include "sentence_test_util.hpp"

using namespace sentence_test;

TEST_CASE("sentence tokenizer: empty text, spaces, normalisation, unknowns") {
  const auto& t = tokenizer();
  CHECK(t.encode("").empty());
  // "▁" then "▁a": the leading separator and one per space.
  CHECK(t.decode(t.encode(" a")) == "\u2581\u2581a");
  // NFKC: the ligature "ﬁ" is "fi", full-width "Ｏｉｌ" is "Oil".
  CHECK(t.encode("\uFB01nance") == t.encode("finance"));
  CHECK(t.encode("\uFF2F\uFF49\uFF4C") == t.encode("Oil"));
  // Unknown code points are id 0, and a run of them merges into one.
  const auto snow = t.encode("\u2603\u2603\u2603");
  REQUIRE(!snow.empty());
  CHECK(snow.back() == 0);
  CHECK(std::count(snow.begin(), snow.end(), 0) == 1);
  CHECK_THROWS_AS(t.encode(std::string("bad \xff utf-8")), etk::invalid_argument);
}

TEST_CASE("sentence tokenizer: the pieces spell every Reuters sentence") {
  const auto& t = tokenizer();
  const auto sentences = examples::reuters_sentences(examples::reuters_dir_from_env());
  REQUIRE(sentences.size() > 400);
  for (const auto& s : sentences) {
    const auto ids = t.encode(s);
    if (std::count(ids.begin(), ids.end(), 0)) continue;  // an unknown spells nothing
    std::string expected = "\u2581";
    for (char c : sentence::nfkc(s)) expected += c == ' ' ? std::string("\u2581") : std::string(1, c);
    INFO(s);
    CHECK(t.decode(ids) == expected);
  }
}
