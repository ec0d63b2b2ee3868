// The papers' headline claims beside our figures: a claim gets the figures of the rows it
// names, rows that did not run are left out (and a claim with none), claims declared by
// several techniques merge, and a claim naming a row no technique declared is an error.
#include <catch2/catch.hpp>

#include <sstream>

#include "report_output.hpp"
#include "study.hpp"

using namespace ocr;

namespace {

RowResult row(const std::string& technique, const std::string& setting, Set set, double delta_char) {
  RowResult r;
  r.technique = technique;
  r.setting = setting;
  r.set = set;
  r.char_acc = 0.9999 + delta_char;
  r.delta_char = delta_char;
  return r;
}

// A technique of this test only (run with StudyOptions::only = {"claims_under_test"}).
int g_variant = 0;

}  // namespace

ETK_OCR_TECHNIQUE(claims_under_test, 999) {
  study.add("T", "a", Set::Short, [](Run&) {});
  study.add("T", "long row", Set::Long, [](Run&) {});
  study.paper_claim("P", "claim", {{"T", "a", Set::Short, {Quantity::CharChange}}});
  study.paper_claim("P", "claim", {{"T", "long row", Set::Long, {Quantity::CharAcc}}});
  if (g_variant == 1) study.paper_claim("Q", "other", {{"T", "no such setting", Set::Short, {Quantity::CharAcc}}});
}

TEST_CASE("a claim gets the figures of its rows; rows that did not run are left out", "[ocr][claims]") {
  std::vector<RowResult> rows = {row("dense float", "fp32", Set::Short, 0), row("LATTE", "keep 15%", Set::Short, -0.0011),
                                 row("LATTE", "keep 15%", Set::Long, -0.0003)};
  rows[1].effect = {"keys filtered %", 84.0912};
  rows[1].delta_line = -0.02;
  rows[1].mean_kl = 0.131;
  rows[1].ms_per_line = 10;
  rows[1].time_vs_float = 0.5;
  rows[2].effect = {"bits per value", 5};
  const std::vector<Quantity> all = {Quantity::Effect, Quantity::CharChange, Quantity::LineChange,
                                     Quantity::CharAcc, Quantity::KL, Quantity::TimeVsFloat};
  std::vector<PaperClaim> claims = {
      {"LATTE", "85% filtered at 0.87% drop",
       {{"LATTE", "keep 15%", Set::Short, all},
        {"LATTE", "keep 10%", Set::Short, {Quantity::CharChange}},   // not run: left out
        {"LATTE", "keep 15%", Set::Long, {Quantity::Effect}, "long set"}}},
      {"SaiT", "no rows ran", {{"prune", "cover 0.8", Set::Long, {Quantity::CharChange}}}},
  };
  const auto resolved = resolve_claims(claims, rows);
  REQUIRE(resolved.size() == 1);  // SaiT's only row did not run: the claim is omitted
  CHECK(resolved[0].paper == "LATTE");
  CHECK(resolved[0].claim == "85% filtered at 0.87% drop");
  REQUIRE(resolved[0].figures.size() == 2);
  CHECK(resolved[0].figures[0] ==
        "LATTE, keep 15% (short): 84.09% keys filtered, -0.11 pp chars, -2.00 pp exact lines, 99.88% chars, "
        "KL 1.31e-01, 0.50x float time");
  CHECK(resolved[0].figures[1] == "long set: 5 bits per value");

  std::ostringstream md;
  write_papers_markdown(md, resolved);
  CHECK_THAT(md.str(), Catch::Contains("| LATTE | 85% filtered at 0.87% drop | LATTE, keep 15% (short): 84.09% keys "
                                       "filtered"));
  CHECK_THAT(md.str(), Catch::Contains("; long set: 5 bits per value |"));
  CHECK_THAT(md.str(), !Catch::Contains("SaiT"));
  std::ostringstream none;
  write_papers_markdown(none, resolve_claims(claims, {rows[0]}));
  CHECK_THAT(none.str(), Catch::Contains("no claims"));
  CHECK_THAT(none.str(), !Catch::Contains("| LATTE"));
}

TEST_CASE("claims from the technique bodies: merged, checked against the declared rows", "[ocr][claims]") {
  Model model;  // never run: the bodies only declare
  Dictionary dict({});
  StudyOptions o;
  o.only = {"claims_under_test"};
  o.progress = false;
  {
    g_variant = 0;
    Study study(model, dict, o);
    study.declare_all();
    REQUIRE(study.paper_claims().size() == 1);  // the same paper and claim twice: one claim
    CHECK(study.paper_claims()[0].figures.size() == 2);
    // The long set switched off: its row is not declared for evaluation, but the claim
    // naming it is still valid; its figure is simply absent from the results.
    o.long_lines = 0;
    Study no_long(model, dict, o);
    no_long.declare_all();
    CHECK(no_long.rows_declared() == 1);
    const auto resolved = resolve_claims(no_long.paper_claims(), {row("T", "a", Set::Short, -0.001)});
    REQUIRE(resolved.size() == 1);
    CHECK(resolved[0].figures == std::vector<std::string>{"T, a (short): -0.10 pp chars"});
  }
  g_variant = 1;
  Study bad(model, dict, o);
  CHECK_THROWS_WITH(bad.declare_all(), Catch::Contains("no row 'T' / 'no such setting'"));
  g_variant = 0;
}
