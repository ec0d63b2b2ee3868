// The JSON and C++ header writers and the JSON reader: every number round-trips bit for
// bit (the tables are stored, not re-derived), the header is well formed, bad identifiers
// are rejected, hostile strings stay data, malformed files are rejected by name.
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

namespace {
void check_same(const PwlTable& a, const PwlTable& b) {
  CHECK(a.breakpoints() == b.breakpoints());
  CHECK(a.slopes() == b.slopes());
  CHECK(a.intercepts() == b.intercepts());
  CHECK(a.lo() == b.lo());
  CHECK(a.hi() == b.hi());
}

void check_same(const TableSet& a, const TableSet& b) {
  CHECK(a.function == b.function);
  CHECK(a.segments == b.segments);
  CHECK(a.coeff.total_bits == b.coeff.total_bits);
  CHECK(a.coeff.frac_bits == b.coeff.frac_bits);
  CHECK(a.min_frac_bits == b.min_frac_bits);
  check_same(a.dense, b.dense);
  REQUIRE(a.scales.size() == b.scales.size());
  for (std::size_t i = 0; i < a.scales.size(); ++i) check_same(a.scales[i], b.scales[i]);
}

std::string json_of(const TableSet& set, const std::string& description) {
  std::ostringstream o;
  write_table_json(o, set, description);
  return o.str();
}

std::string header_of(const TableSet& set, const std::string& description) {
  std::ostringstream o;
  write_table_header(o, set, "t", description);
  return o.str();
}

// The value of the C++ string literal starting at text[pos] (the opening quote), decoding
// the escapes the header writer may use; pos is left after the closing quote.
std::string cpp_literal_at(const std::string& text, std::size_t& pos) {
  REQUIRE(text.at(pos) == '"');
  std::string out;
  for (++pos; text.at(pos) != '"'; ++pos) {
    if (text[pos] != '\\') {
      out += text[pos];
      continue;
    }
    const char e = text.at(++pos);
    if (e >= '0' && e <= '7') {
      out += static_cast<char>(std::stoi(text.substr(pos, 3), nullptr, 8));
      pos += 2;
    } else {
      out += e;  // \" \\ \?
    }
  }
  ++pos;
  return out;
}

// Hostile strings: quotes, a C++ escape from the literal, a trailing backslash (which
// would splice the next line into a comment), control characters, a lone CR, UTF-8.
const std::vector<std::string> kHostile = {
    "gelu\"",
    "gelu\", 7, {8, 6}, PwlTable({}, {0.0f}, {0.0f}, 0, 1), 0, {}}; int injected = 1; //",
    "ends in a backslash \\",
    "line\\\n#pragma once",
    std::string("nul\0and\x01\x1f\x7f", 10),
    "cr\ronly",
    "tab\there ?\?/ trigraph",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
};
}  // namespace

TEST_CASE("table io: read_table_json reads back exactly what write_table_json wrote") {
  TableSet set = sample_set();
  for (const std::string& s : kHostile) {
    set.function = s;
    std::string description;
    const TableSet back = read_table_json(json_of(set, s + "\nsecond line"), &description);
    check_same(set, back);
    CHECK(description == s + "\nsecond line");
  }
  std::istringstream in(json_of(set, "from a stream"));
  check_same(set, read_table_json(in));
}

TEST_CASE("table io: the header carries hostile strings only as data") {
  TableSet set = sample_set();
  for (const std::string& s : kHostile) {
    INFO("string: " << s);
    set.function = s;
    const std::string text = header_of(set, s);
    // Only printable ASCII and newlines; no line ends in a backslash; #pragma once on a
    // line of its own right after the comment block.
    for (char c : text) CHECK(((c >= 0x20 && c < 0x7f) || c == '\n'));
    std::istringstream lines(text);
    bool pragma = false;
    for (std::string line; std::getline(lines, line);) {
      CHECK((line.empty() || line.back() != '\\'));
      if (!pragma && line.rfind("//", 0) != 0) {
        CHECK(line == "#pragma once");
        pragma = true;
      }
    }
    CHECK(pragma);
    // The function name is one string literal that decodes to the name, followed by the
    // segment count: nothing of it escapes the literal.
    std::size_t pos = text.find("static const TableSet set{\n    ");
    REQUIRE(pos != std::string::npos);
    pos += std::string("static const TableSet set{\n    ").size();
    CHECK(cpp_literal_at(text, pos) == s);
    CHECK(text.compare(pos, 5, ", 7, ") == 0);
  }
}

TEST_CASE("table io: invalid UTF-8 and unwritable sets are rejected by both writers") {
  TableSet set = sample_set();
  std::ostringstream o;
  for (const std::string bad : {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    CHECK_THROWS_WITH(write_table_json(o, set, bad), Catch::Contains("'description'") && Catch::Contains("UTF-8"));
    CHECK_THROWS_WITH(write_table_header(o, set, "t", bad), Catch::Contains("'description'"));
    TableSet named = set;
    named.function = "x" + bad;
    CHECK_THROWS_WITH(write_table_json(o, named, ""), Catch::Contains("'set.function'"));
    CHECK_THROWS_WITH(write_table_header(o, named, "t", ""), Catch::Contains("'set.function'"));
  }
  TableSet empty = set;
  empty.scales.clear();
  CHECK_THROWS_WITH(write_table_json(o, empty, ""), Catch::Contains("'set.scales'"));
}

TEST_CASE("table io: malformed table files are rejected with the problem named") {
  const TableSet set = sample_set();
  const std::string good = json_of(set, "d");
  REQUIRE_NOTHROW(read_table_json(good));
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const std::size_t pos = t.find(from);
    REQUIRE(pos != std::string::npos);
    return t.replace(pos, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "unexpected end"},
      {good.substr(0, good.size() / 2), "byte"},
      {good + "x", "after the top-level value"},
      {"[" + good + "]", "must be an object"},
      {replaced("\"segments\": 7", "\"segments\": 7.5"), "segments"},
      {replaced("\"segments\": 7", "\"segments\": 0"), "segments"},
      {replaced("\"segments\": 7", "\"segments\": 1e400"), "double range"},
      {replaced("\"segments\": 7", "\"segments\": 6"), "segments"},
      {replaced("\"segments\": 7,", ""), "lacks the key \"segments\""},
      {replaced("\"segments\"", "\"function\""), "duplicate object key"},
      {replaced("\"segments\"", "\"segmentz\""), "unknown key"},
      {replaced("\"total_bits\": 8", "\"total_bits\": 17"), "coeff_format.total_bits"},
      {replaced("left-closed", "right-closed"), "convention"},
      {replaced("\"function\": \"gelu\"", "\"function\": 3"), "function must be a string"},
      {replaced("\"function\": \"gelu\"", "\"function\": \"g\\u00\""), "\\u escape"},
      {replaced("\"function\": \"gelu\"", "\"function\": \"g\\ud800\""), "surrogate"},
      {replaced("\"function\": \"gelu\"", "\"function\": \"g\xff\""), "UTF-8"},
      {replaced("\"function\": \"gelu\"", "\"function\": \"g\x01\""), "control character"},
      {replaced("\"function\": \"gelu\"", "\"function\": \"g\\q\""), "invalid escape"},
      {replaced("\"range\": [", "\"range\": [1, "), "range must hold two numbers"},
      {replaced("\"range\": [", "\"range\": [-01, "), "byte"},
      {replaced("\"slopes\": [", "\"slopes\": [1e39, "), "outside the float range"},
      {replaced("\"slopes\": [", "\"slopes\": [NaN, "), "invalid value"},
      {replaced("\"breakpoints\": [", "\"breakpoints\": [9, "), "dense is not a valid table"},
      {replaced("\"3\": {", "\"4\": {"), "consecutive"},
      {replaced("\"2\": {", "\"02\": {"), "exponent j"},
      {replaced("\"2\": {", "\"-1\": {"), "exponent j"},
      {replaced("\"scales\": {", "\"scales\": [{"), "byte"},
      {std::string(100, '[') + std::string(100, ']'), "nesting"},
  };
  for (const auto& c : cases) {
    INFO("case expecting: " << c.second);
    CHECK_THROWS_WITH(read_table_json(c.first), Catch::Contains("'json'") && Catch::Contains(c.second));
  }
}
