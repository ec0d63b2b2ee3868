// The renderer and PaddleOCR's preprocessing; the text loaders.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "render.hpp"
#include "text.hpp"

using namespace ocr;

TEST_CASE("a known string renders to a non-empty image of the right size", "[ocr][render]") {
  Renderer r(Renderer::default_fonts());
  for (int font = 0; font < 2; ++font) {
    GrayImage img = r.render("Hello, Reuters 1987", font);
    REQUIRE(img.h > 20);
    REQUIRE(img.w > 5 * img.h);  // 19 characters are much wider than tall
    long dark = 0, white = 0;
    for (auto v : img.px) { dark += v < 128; white += v == 255; }
    CHECK(dark > 200);
    CHECK(white > long(img.px.size()) / 2);
    // The margins are white.
    for (int y = 0; y < img.h; ++y) CHECK(img.px[size_t(y) * img.w] == 255);
    auto x = preprocess(img, 320);
    REQUIRE(x.size() == size_t(3) * 48 * 320);
    for (float v : x) REQUIRE((v >= -1.f && v <= 1.f));
    // Wider than 320 at height 48: squeezed to the full width, no padding.
    CHECK(x[47 * 320 + 319] == Approx(1.f));
  }
  CHECK(r.render("", 0).w >= 1);
  CHECK_THROWS_WITH(Renderer({"/nonexistent.ttf"}), Catch::Contains("cannot load font"));
}

TEST_CASE("preprocessing keeps the aspect ratio and pads right with 0", "[ocr][render]") {
  GrayImage img;
  img.h = 24;
  img.w = 48;  // aspect 2: 96 pixels at height 48
  img.px.assign(size_t(img.h) * img.w, 255);
  img.px[0] = 0;
  auto x = preprocess(img, 320);
  CHECK(x[0] == Approx(-1.f).margin(0.1));  // black corner (bilinear, upscaled 2x)
  CHECK(x[10] == Approx(1.f));              // white
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 48; ++y)
      for (int xx = 96; xx < 320; ++xx) REQUIRE(x[(size_t(c) * 48 + y) * 320 + xx] == 0.f);
  CHECK(x[95] == Approx(1.f));
  CHECK_THROWS(preprocess(GrayImage{}, 320));
}

TEST_CASE("word wrap", "[ocr][text]") {
  auto l = wrap_lines({"the quick brown fox jumps over the lazy dog"}, 10);
  CHECK(l == std::vector<std::string>{"the quick", "brown fox", "jumps over", "the lazy", "dog"});
  auto cut = wrap_lines({"abcdefghijklmnop qr"}, 5);
  CHECK(cut == std::vector<std::string>{"abcde", "fghij", "klmno", "p qr"});
  auto u = wrap_lines({"caf\xc3\xa9 na\xc3\xafve"}, 5);  // counts code points, not bytes
  CHECK(u == std::vector<std::string>{"caf\xc3\xa9", "na\xc3\xafve"});
}

TEST_CASE("Reuters loader: body, entities, Latin-1, trailing Reuter", "[ocr][text]") {
  char tmpl[] = "/tmp/etk_ocr_reutersXXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  mkdir((dir + "/crude").c_str(), 0755);
  mkdir((dir + "/acq").c_str(), 0755);
  {
    std::ofstream f(dir + "/crude/reut-1.xml", std::ios::binary);
    f << "<REUTERS><TEXT><TITLE>T</TITLE><BODY>Oil &lt;XON&gt; rose\n  1.50 dlrs, caf\xe9 &amp; co.\n Reuter\n"
         "</BODY></TEXT></REUTERS>";
  }
  {
    std::ofstream f(dir + "/acq/reut-2.xml");
    f << "<REUTERS><TEXT><BODY>Second &quot;article&quot;.</BODY></TEXT></REUTERS>";
  }
  auto a = reuters_articles(dir);
  REQUIRE(a.size() == 2);
  CHECK(a[0] == "Oil <XON> rose 1.50 dlrs, caf\xc3\xa9 & co.");
  CHECK(a[1] == "Second \"article\".");
  std::remove((dir + "/crude/reut-1.xml").c_str());
  std::remove((dir + "/acq/reut-2.xml").c_str());
  rmdir((dir + "/crude").c_str());
  rmdir((dir + "/acq").c_str());
  rmdir(dir.c_str());
  CHECK_THROWS_WITH(reuters_articles("/nonexistent"), Catch::Contains("cannot list"));
}
