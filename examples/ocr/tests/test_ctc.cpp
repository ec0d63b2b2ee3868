// Greedy CTC decoding, the dictionary's class layout, and the edit distance.
#include "ocr_test_util.hpp"

using namespace ocr;

namespace {
// One-hot-ish probabilities for a label path (0 = blank).
std::vector<float> path_probs(const std::vector<int>& path, int classes) {
  std::vector<float> p(path.size() * classes, 0.01f / classes);
  for (size_t t = 0; t < path.size(); ++t) p[t * classes + path[t]] = 0.99f;
  return p;
}
}  // namespace

TEST_CASE("greedy CTC merges repeats and drops blanks", "[ocr][ctc]") {
  const int C = 6;
  auto p = path_probs({0, 1, 1, 0, 1, 2, 2, 2, 0, 0, 3, 5}, C);
  CHECK(ctc_greedy(p.data(), 12, C) == std::vector<int>{1, 1, 2, 3, 5});
  auto blank = path_probs({0, 0, 0}, C);
  CHECK(ctc_greedy(blank.data(), 3, C).empty());
  CHECK(ctc_greedy(p.data(), 0, C).empty());
  auto one = path_probs({4}, C);
  CHECK(ctc_greedy(one.data(), 1, C) == std::vector<int>{4});
}

TEST_CASE("dictionary: blank, characters in order, then space", "[ocr][ctc]") {
  Dictionary d({"a", "b", "\xe4\xb8\xad"});
  CHECK(d.classes() == 5);
  CHECK(d.symbol(0).empty());
  CHECK(d.symbol(1) == "a");
  CHECK(d.symbol(3) == "\xe4\xb8\xad");
  CHECK(d.symbol(4) == " ");
  CHECK(ctc_text({1, 4, 2, 3}, d) == "a b\xe4\xb8\xad");
}

TEST_CASE("the real dictionary has 6623 characters", "[ocr][ctc]") {
  Dictionary d = Dictionary::load(ocr_test::model_dir() + "/ppocr_keys_v1.txt");
  CHECK(d.classes() == 6625);
  CHECK_THROWS_WITH(Dictionary::load("/nonexistent/keys.txt"), Catch::Contains("cannot open dictionary"));
}

TEST_CASE("edit distance", "[ocr][ctc]") {
  CHECK(edit_distance(U"kitten", U"sitting") == 3);
  CHECK(edit_distance(U"", U"abc") == 3);
  CHECK(edit_distance(U"abc", U"") == 3);
  CHECK(edit_distance(U"same", U"same") == 0);
  CHECK(edit_distance(U"ab", U"ba") == 2);
}
