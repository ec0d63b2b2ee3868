// The quality measures (quality.hpp) on hand-checkable inputs, and the readers of the
// report's data: Weka's Reuters ARFF files and the SpamAssassin mails.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "quality.hpp"
#include "reuters_arff.hpp"
#include "spam.hpp"

namespace {

std::string temp_file(const std::string& text) {
  char name[] = "/tmp/etk_quality_XXXXXX";
  const int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  std::FILE* f = fdopen(fd, "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return name;
}

}  // namespace

TEST_CASE("quality: cosine statistics") {
  const std::vector<float> a = {1, 0, 0, 1, 3, 4}, b = {1, 0, 0, -2, 4, 3};
  const auto same = sentence::cosine_stats(a.data(), a.data(), 3, 2);
  CHECK(same.mean == Approx(1.0).epsilon(1e-15));
  CHECK(same.min == Approx(1.0).epsilon(1e-15));
  // rows: cos 1, cos -1 (unnormalised), cos (12 + 12) / 25
  const auto st = sentence::cosine_stats(a.data(), b.data(), 3, 2);
  CHECK(st.min == Approx(-1.0).epsilon(1e-15));
  CHECK(st.mean == Approx((1.0 - 1.0 + 24.0 / 25.0) / 3.0).epsilon(1e-15));
  CHECK_THROWS(sentence::cosine_stats(a.data(), b.data(), 0, 2));
}

TEST_CASE("quality: nearest neighbours and retrieval agreement") {
  // Unit vectors at angles 0, 10, 25, 45, 90 degrees: neighbours by angle gap.
  std::vector<float> e;
  for (double deg : {0.0, 10.0, 25.0, 45.0, 90.0}) {
    e.push_back(float(std::cos(deg * M_PI / 180)));
    e.push_back(float(std::sin(deg * M_PI / 180)));
  }
  const auto nn = sentence::nearest_neighbours(e.data(), 5, 2, 2);
  CHECK(nn[0] == std::vector<int>{1, 2});
  CHECK(nn[2] == std::vector<int>{1, 3});  // 15 and 20 degrees away
  CHECK(nn[4] == std::vector<int>{3, 2});
  CHECK(sentence::retrieval_agreement(nn, e.data(), 5, 2) == 1.0);
  // Swapping rows 0 and 4 moves their neighbourhoods: only rows whose sets survive agree.
  std::vector<float> swapped = e;
  std::swap(swapped[0], swapped[8]);
  std::swap(swapped[1], swapped[9]);
  const double agree = sentence::retrieval_agreement(nn, swapped.data(), 5, 2);
  CHECK(agree < 1.0);
  CHECK(agree >= 0.0);
  CHECK_THROWS(sentence::nearest_neighbours(e.data(), 5, 2, 5));
}

TEST_CASE("quality: the logistic probe separates separable data and its accuracy counts") {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::vector<float> x;
  std::vector<int> y;
  for (int i = 0; i < 200; ++i) {
    const int label = i % 2;
    x.push_back((label ? 2.0f : -2.0f) + noise(rng));
    x.push_back(noise(rng));
    y.push_back(label);
  }
  const auto probe = sentence::LogisticProbe::train(x.data(), y, 2);
  CHECK(probe.accuracy(x.data(), y) == 1.0);
  std::vector<int> flipped;
  for (int v : y) flipped.push_back(1 - v);
  CHECK(probe.accuracy(x.data(), flipped) == 0.0);
  CHECK(probe.w[0] > 0);
  y[3] = 2;
  CHECK_THROWS(sentence::LogisticProbe::train(x.data(), y, 2));
}

TEST_CASE("quality data: ARFF rows with escapes, and bad rows rejected") {
  const std::string path = temp_file(
      "@relation 'r'\n@attribute Text string\n@attribute c {0,1}\n\n@data\n\n"
      "'FIRST Line one.\\nIt\\'s two\\\\ \\\"x\\\".',0\n'Second\\tone.',1\n");
  const auto texts = examples::read_arff_texts(path);
  REQUIRE(texts.size() == 2);
  CHECK(texts[0] == "FIRST Line one. It's two\\ \"x\".");
  CHECK(texts[1] == "Second one.");
  std::remove(path.c_str());
  for (const char* bad : {"@data\nno quote,0\n", "@data\n'unterminated\n", "@data\n'bad \\q escape',0\n", "no data\n"}) {
    const std::string p = temp_file(bad);
    CHECK_THROWS_AS(examples::read_arff_texts(p), std::runtime_error);
    std::remove(p.c_str());
  }
}

TEST_CASE("quality data: a mail's text line") {
  const std::string raw =
      "From: a@b\nSubject: Cheap  offer\xe9 now\nX: y\n\n<html><b>Buy</b> this=\n now, or\n"
      "not.</html> w1 w2 w3";
  CHECK(sentence::mail_text(raw, 3) == "Cheap offer now Buy this now,");
  CHECK(sentence::mail_text(raw, 40) == "Cheap offer now Buy this now, or not. w1 w2 w3");
  CHECK(sentence::mail_text("Subject: only headers\n", 5) == "only headers");
}

TEST_CASE("quality data: the SpamAssassin split is balanced and disjoint") {
  const sentence::SpamSplit split = sentence::spam_split(sentence::spam_dir_from_env(), 5);
  REQUIRE(split.train.size() == 10);
  REQUIRE(split.test.size() == 10);
  int spam_train = 0, spam_test = 0;
  std::set<std::string> train_text;
  for (const auto& m : split.train) spam_train += m.spam, train_text.insert(m.text);
  for (const auto& m : split.test) {
    spam_test += m.spam;
    CHECK(train_text.count(m.text) == 0);
    CHECK(!m.text.empty());
  }
  CHECK(spam_train == 5);
  CHECK(spam_test == 5);
  CHECK_THROWS(sentence::spam_split(sentence::spam_dir_from_env(), 100000));
}
