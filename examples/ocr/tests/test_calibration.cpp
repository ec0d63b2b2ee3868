// The held-out calibration pool: disjoint from every scored line (no shared article, no
// shared text), rendered like the scored lines, addressed through Study::calibration_lines
// by forward and float_probs, with the backbone cache.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <unistd.h>

#include "ocr_test_util.hpp"
#include "study.hpp"
#include "text.hpp"

using namespace ocr;

namespace {

// Every pool line comes from an article after `after`, and no pool text is a scored text.
void check_disjoint(const Dataset& pool, const Dataset& scored, int after) {
  const std::set<std::string> texts(scored.truth.begin(), scored.truth.end());
  REQUIRE(pool.source.size() == pool.size());
  for (size_t i = 0; i < pool.size(); ++i) {
    CHECK(pool.source[i] > after);
    CHECK(texts.count(pool.truth[i]) == 0);
  }
  for (int s : scored.source) CHECK(s <= after);
}

// 24 scored short lines, a calibration pool of 8, `long_lines` long lines, `valid` validation lines.
StudyOptions small_study(int long_lines, int valid) {
  StudyOptions o;
  o.data.lines = 24;
  o.long_lines = long_lines;
  o.calib_lines = 8;
  o.valid_lines = valid;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("the calibration pool comes from articles after the scored ones, evenly spaced", "[ocr][calibration]") {
  // Eight paragraphs of three 11-character lines each ("pN lineK xx" wraps at 11 characters).
  char path[] = "/tmp/etk_ocr_calib_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(path);
    for (int p = 0; p < 8; ++p) {
      for (int k = 0; k < 3; ++k) f << "p" << p << " line" << k << " xx ";
      f << "\n\n";
    }
    f << "p1 line0 xx\n";  // a ninth paragraph whose only line repeats a scored line's text
  }
  DataOptions o;
  o.text_file = path;
  o.max_chars = 11;
  o.width = 160;
  o.lines = 5;  // paragraphs 0 and 1
  const Dataset scored = make_dataset(o, "scored");
  REQUIRE(scored.size() == 5);
  CHECK(scored.source == std::vector<int>{0, 0, 0, 1, 1});
  const int after = last_source(o);
  CHECK(after == 1);
  // Candidates: paragraphs 2..7 (18 lines); the ninth's line repeats a scored text.
  const Dataset pool = make_calibration_pool(o, 6, after, scored.truth, "pool");
  REQUIRE(pool.size() == 6);
  check_disjoint(pool, scored, after);
  // The middle of each of 6 slices of 3 candidates: line 1 of paragraphs 2..7.
  for (size_t i = 0; i < pool.size(); ++i) {
    CHECK(pool.source[i] == int(i) + 2);
    CHECK(pool.truth[i] == "p" + std::to_string(i + 2) + " line1 xx");
    CHECK(pool.images[i].size() == size_t(3) * 48 * 160);
  }
  // Rendered exactly as the scored lines: the same text at the same position, same pixels.
  DataOptions same = o;
  same.skip = 7;  // p2 line1 xx, rendered first
  same.lines = 1;
  CHECK(make_dataset(same, "one").images[0] == pool.images[0]);
  // Asking for more than there is gives what there is (18 candidates, the repeat excluded).
  const Dataset all = make_calibration_pool(o, 100, after, scored.truth, "all");
  CHECK(all.size() == 18);
  check_disjoint(all, scored, after);
  CHECK(make_calibration_pool(o, 4, 8, scored.truth, "none").size() == 0);
  CHECK_THROWS(make_calibration_pool(o, -1, after, scored.truth, "bad"));
  std::remove(path);
}

TEST_CASE("the report's default sets: the pools share no article with any scored line", "[ocr][calibration]") {
  StudyOptions defaults;
  DataOptions shrt = defaults.data, lng = defaults.data;
  lng.width = defaults.long_width;
  lng.max_chars = defaults.long_chars;
  lng.lines = defaults.long_lines;
  const int after = std::max(last_source(shrt), last_source(lng));
  const Dataset s = make_dataset(shrt, "short"), l = make_dataset(lng, "long");
  REQUIRE(s.size() == size_t(defaults.data.lines));
  const Dataset sp = make_calibration_pool(shrt, defaults.calib_lines, after, s.truth, "short pool");
  const Dataset lp = make_calibration_pool(lng, defaults.long_calib_lines, after, l.truth, "long pool");
  CHECK(sp.size() == size_t(defaults.calib_lines));
  CHECK(lp.size() == size_t(defaults.long_calib_lines));
  for (const Dataset* pool : {&sp, &lp})
    for (const Dataset* scored : {&s, &l}) check_disjoint(*pool, *scored, after);
  // Spread over the held-out articles, not a block of one.
  CHECK(std::set<int>(sp.source.begin(), sp.source.end()).size() >= 30);
}

TEST_CASE("Study::calibration_lines: held-out indices that forward and float_probs accept", "[ocr][calibration]") {
  StudyOptions o = small_study(3, 0);
  o.long_calib_lines = 4;
  Study study(ocr_test::model(), ocr_test::dict(), o);
  const size_t n = study.data(Set::Short).size();
  REQUIRE(n == 24);
  REQUIRE(study.calibration_data(Set::Short).size() == 8);
  REQUIRE(study.float_probs(Set::Short).size() == n + 8);
  CHECK_THROWS_WITH(study.validation_lines(Set::Short, 1), Catch::Contains("validation pool of 0"));
  const std::vector<int> four = study.calibration_lines(Set::Short, 4);
  CHECK(four == std::vector<int>{24, 26, 28, 30});
  CHECK(study.calibration_lines(Set::Short, 4) == four);  // deterministic
  const std::vector<int> all = study.calibration_lines(Set::Short, 8);
  CHECK(all == std::vector<int>{24, 25, 26, 27, 28, 29, 30, 31});
  CHECK(study.calibration_lines(Set::Long, 2) == std::vector<int>{3, 5});
  CHECK_THROWS_WITH(study.calibration_lines(Set::Short, 9), Catch::Contains("calibration pool of 8"));
  CHECK_THROWS(study.calibration_lines(Set::Short, 0));
  CHECK_THROWS_AS(study.forward(Run{}, Set::Short, {int(n) + 8}), std::out_of_range);
  // Disjoint from the scored lines of both sets.
  const int after = std::max(study.data(Set::Short).source.back(), study.data(Set::Long).source.back());
  check_disjoint(study.calibration_data(Set::Short), study.data(Set::Short), after);
  check_disjoint(study.calibration_data(Set::Long), study.data(Set::Long), after);
  // The float probabilities of a pool line are the model's on its image, and a row that
  // starts from the cached backbone reproduces them (the pool is in the cache too).
  Runner r(ocr_test::model());
  Probs direct;
  const Dataset& pool = study.calibration_data(Set::Short);
  r.run(pool.images[2].data(), pool.width, Hooks{}, direct);
  CHECK(ocr_test::max_abs_diff(direct, study.float_probs(Set::Short)[size_t(all[2])]) == 0.f);
  Run cached;
  int calls = 0;
  cached.hooks.on_probs = [&calls](int, const float*, int, int) { ++calls; };  // transformer only
  REQUIRE(!cached.hooks.uses_backbone());
  const auto got = study.forward(cached, Set::Short, four);
  REQUIRE(got.size() == 4);
  CHECK(calls == 8);  // two blocks per line
  for (size_t k = 0; k < four.size(); ++k)
    CHECK(ocr_test::max_abs_diff(got[k], study.float_probs(Set::Short)[size_t(four[k])]) == 0.f);
  CHECK(study.decode(got[1]) == study.decode(study.float_probs(Set::Short)[size_t(four[1])]));
}

TEST_CASE("Study::validation_lines: disjoint from the scored lines and the calibration pool", "[ocr][calibration]") {
  const StudyOptions o = small_study(0, 6);
  Study study(ocr_test::model(), ocr_test::dict(), o);
  const Dataset& scored = study.data(Set::Short);
  const Dataset& calib = study.calibration_data(Set::Short);
  const Dataset& valid = study.validation_data(Set::Short);
  REQUIRE(valid.size() == 6);
  REQUIRE(study.float_probs(Set::Short).size() == 24 + 8 + 6);
  // No validation text is a scored or a calibration text; from held-out articles only.
  check_disjoint(valid, scored, scored.source.back());
  const std::set<std::string> c(calib.truth.begin(), calib.truth.end());
  for (const auto& t : valid.truth) CHECK(c.count(t) == 0);
  // Indices after the calibration pool, deterministic, bounded.
  const std::vector<int> three = study.validation_lines(Set::Short, 3);
  CHECK(three == std::vector<int>{32, 34, 36});
  CHECK(study.validation_lines(Set::Short, 6) == std::vector<int>{32, 33, 34, 35, 36, 37});
  const std::vector<int> cal = study.calibration_lines(Set::Short, 8);
  for (int v : three) CHECK(std::find(cal.begin(), cal.end(), v) == cal.end());
  CHECK_THROWS_WITH(study.validation_lines(Set::Short, 7), Catch::Contains("validation pool of 6"));
  CHECK_THROWS(study.validation_lines(Set::Short, 0));
  // The index space reaches them: image, forward and float_probs agree with a direct run.
  Runner r(ocr_test::model());
  Probs direct;
  r.run(valid.images[2].data(), valid.width, Hooks{}, direct);
  CHECK(study.image(Set::Short, three[1]) == study.image(Set::Short, 34));
  CHECK(ocr_test::max_abs_diff(direct, study.float_probs(Set::Short)[34]) == 0.f);
  const auto got = study.forward(Run{}, Set::Short, {34});
  CHECK(ocr_test::max_abs_diff(got[0], direct) == 0.f);
  CHECK_THROWS_AS(study.forward(Run{}, Set::Short, {38}), std::out_of_range);
}

TEST_CASE("a text without blank lines is split by lines: the calibration pool is not empty", "[ocr][calibration]") {
  char path[] = "/tmp/etk_ocr_lines_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(path);
    for (int k = 0; k < 12; ++k) f << "line " << k << " of a user text\n";
  }
  DataOptions o;
  o.text_file = path;
  o.width = 320;
  o.lines = 4;
  const Dataset scored = make_dataset(o, "scored");
  REQUIRE(scored.size() == 4);
  CHECK(scored.source == std::vector<int>{0, 1, 2, 3});
  const int after = last_source(o);
  CHECK(after == 3);
  const Dataset pool = make_calibration_pool(o, 4, after, scored.truth, "pool");
  REQUIRE(pool.size() == 4);  // was 0: the whole file was one paragraph
  check_disjoint(pool, scored, after);
  // A file with paragraphs keeps them.
  {
    std::ofstream f(path);
    f << "one\ntwo\n\nthree\n";
  }
  CHECK(wrap_lines(text_file_paragraphs(path), 40) == std::vector<std::string>{"one two", "three"});
  std::remove(path);
}

TEST_CASE("the check set: another text in other fonts, no pools, the quantizer rows scored on it too",
          "[ocr][calibration]") {
  const char* path = "/tmp/etk_check_set_text.txt";
  {
    std::ofstream f(path);
    f << "alpha beta gamma\n\ndelta epsilon zeta\n\neta theta iota\n";
  }
  StudyOptions o;
  o.data.lines = 2;
  o.long_lines = 0;
  o.calib_lines = 1;
  o.valid_lines = 0;
  o.progress = false;
  o.check.text_file = path;
  o.check.lines = 3;
  o.only = {"int8_gemm"};
  Study study(ocr_test::model(), ocr_test::dict(), o);
  study.declare_all();
  CHECK(study.rows_declared() == 2);  // the short row and its check-set twin
  const Dataset& check = study.data(Set::Check);
  REQUIRE(check.size() == 3);
  CHECK(check.truth[0] == "alpha beta gamma");
  CHECK(check.width == study.data(Set::Short).width);
  CHECK(study.calibration_data(Set::Check).size() == 0);
  CHECK_THROWS(study.calibration_lines(Set::Check, 1));
  CHECK(std::string(set_name(Set::Check)) == "check");
  // Switched off: no check rows, and claims that name a check row still resolve.
  o.check.lines = 0;
  Study off(ocr_test::model(), ocr_test::dict(), o);
  CHECK_NOTHROW(off.declare_all());
  CHECK(off.rows_declared() == 1);
  // A technique not in check_techniques gets no check row.
  o.check.lines = 3;
  o.check_techniques = {"quant"};
  Study other(ocr_test::model(), ocr_test::dict(), o);
  other.declare_all();
  CHECK(other.rows_declared() == 1);
  std::remove(path);
}
