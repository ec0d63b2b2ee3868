// The JSON and C++ header writers: every number round-trips bit for bit (the tables are
// stored, not re-derived), the header is well formed, bad identifiers are rejected.
#include <catch2/catch.hpp>
#include <etk/lut/table_io.hpp>

#include <cstdlib>
#include <sstream>

#include "support/lut_util.hpp"

using namespace etk::lut;

namespace {
// Every number written after `key` ([a, b, ...] or {af, bf, ...}) in order of appearance.
std::vector<float> numbers_after(const std::string& text, const std::string& key, std::size_t& pos) {
  pos = text.find(key, pos);
  REQUIRE(pos != std::string::npos);
  const std::size_t open = text.find_first_of("[{", pos);
  const std::size_t close = text.find_first_of("]}", open);
  std::vector<float> out;
  const char* p = text.c_str() + open + 1;
  const char* end = text.c_str() + close;
  while (p < end) {
    char* next = nullptr;
    const float v = std::strtof(p, &next);
    if (next == p) break;
    out.push_back(v);
    p = next;
    while (p < end && (*p == 'f' || *p == ',' || *p == ' ' || *p == '\n')) ++p;
  }
  pos = close;
  return out;
}

TableSet sample_set() {
  std::mt19937 rng(9);
  // Arbitrary floats (not dyadic): the 9-digit output must still round-trip.
  const PwlTable dense = lut_test::random_table(rng, 7, -4.0, 4.0);
  return TableSet{"gelu", 7, {8, 6}, dense, 2,
                  {lut_test::random_table(rng, 7, -4.0, 4.0, 2), lut_test::random_table(rng, 6, -4.0, 4.0, 3)}};
}
}  // namespace

TEST_CASE("table io: JSON round-trips every number") {
  const TableSet set = sample_set();
  std::ostringstream o;
  write_table_json(o, set, "a \"quoted\" description");
  const std::string text = o.str();
  CHECK(text.find("\\\"quoted\\\"") != std::string::npos);
  CHECK(text.find("left-closed") != std::string::npos);
  std::size_t pos = text.find("\"dense\"");
  for (const PwlTable* t : {&set.dense, &set.scales[0], &set.scales[1]}) {
    CHECK(numbers_after(text, "\"breakpoints\"", pos) == t->breakpoints());
    CHECK(numbers_after(text, "\"slopes\"", pos) == t->slopes());
    CHECK(numbers_after(text, "\"intercepts\"", pos) == t->intercepts());
  }
  CHECK(text.find("\"3\": {") != std::string::npos);  // scales keyed by j
}

TEST_CASE("table io: the header round-trips every number and names the function") {
  const TableSet set = sample_set();
  std::ostringstream o;
  write_table_header(o, set, "my_gelu_7", "line one\nline two");
  const std::string text = o.str();
  CHECK(text.find("inline const TableSet& my_gelu_7()") != std::string::npos);
  CHECK(text.find("// line two") != std::string::npos);
  std::size_t pos = 0;
  for (const PwlTable* t : {&set.dense, &set.scales[0], &set.scales[1]}) {
    CHECK(numbers_after(text, "PwlTable(", pos) == t->breakpoints());
    CHECK(numbers_after(text, "{", pos) == t->slopes());
    CHECK(numbers_after(text, "{", pos) == t->intercepts());
  }
  // Float literals always carry a '.' or an exponent before the 'f' suffix.
  CHECK(text.find(" 0f") == std::string::npos);
}

TEST_CASE("table io: bad identifiers are rejected") {
  const TableSet set = sample_set();
  std::ostringstream o;
  CHECK_THROWS_WITH(write_table_header(o, set, "7gelu", ""), Catch::Contains("'name'"));
  CHECK_THROWS_WITH(write_table_header(o, set, "gelu-8", ""), Catch::Contains("'name'"));
  CHECK_THROWS_WITH(write_table_header(o, set, "", ""), Catch::Contains("'name'"));
}
