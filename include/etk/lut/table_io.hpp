// etk/lut/table_io.hpp: writes a TableSet as JSON and as a C++ header, and reads the JSON
// back.
//
// Numbers are written with 9 significant digits, which round-trips every float, so the
// header reproduces the searched tables bit for bit (they are stored, not re-derived).
// The header defines `const TableSet& <name>()` in etk::lut::tables.
//
// Strings are data, never code: the function name and the description must be valid UTF-8
// (else etk::invalid_argument) and are escaped for each target (detail/json_text.hpp):
// JSON string escapes, a C++ string literal of octal escapes, and comment lines that can
// neither end in a backslash nor hold a newline. read_table_json is a strict reader of
// exactly the format write_table_json writes.
#pragma once

#include <array>
#include <cmath>
#include <iomanip>
#include <istream>
#include <iterator>
#include <limits>
#include <locale>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/detail/json_text.hpp"
#include "etk/lut/table_set.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

// Largest input-scale exponent j a table file may key (FixedFormat's fraction limit).
constexpr int kMaxFracBits = 24;

// 9 significant digits (round-trips a float), always with a '.' or exponent so that a
// suffix 'f' makes a valid C++ literal.
inline std::string number(float v, const char* suffix) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s << std::setprecision(9) << v;
  std::string t = s.str();
  if (t.find_first_of(".e") == std::string::npos) t += ".0";
  return t + suffix;
}

inline std::string number_list(const std::vector<float>& v, const char* suffix) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + number(v[i], suffix);
  return out;
}

inline void json_table(std::ostream& o, const PwlTable& t, const std::string& indent) {
  o << indent << "\"breakpoints\": [" << number_list(t.breakpoints(), "") << "],\n"
    << indent << "\"slopes\": [" << number_list(t.slopes(), "") << "],\n"
    << indent << "\"intercepts\": [" << number_list(t.intercepts(), "") << "]";
}

inline std::string cpp_table(const PwlTable& t) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s << std::setprecision(17) << "PwlTable({" << number_list(t.breakpoints(), "f") << "},\n      {"
    << number_list(t.slopes(), "f") << "},\n      {" << number_list(t.intercepts(), "f")
    << "},\n      " << t.lo() << ", " << t.hi() << ")";
  return s.str();
}

// The writers' checks of a set: what the JSON can carry and read back.
inline void check_writable(const TableSet& set, const std::string& description) {
  check_utf8("set.function", set.function);
  check_utf8("description", description);
  ETK_CHECK(set.segments >= 1, "argument 'set.segments' must be >= 1, got " << set.segments);
  ETK_CHECK(!set.scales.empty(), "argument 'set.scales' is empty (the file keys scales by j)");
  ETK_CHECK(set.min_frac_bits >= 0 && set.max_frac_bits() <= kMaxFracBits,
            "argument 'set.min_frac_bits': scales 2^-" << set.min_frac_bits << " .. 2^-"
                << set.max_frac_bits() << " must lie within 2^-0 .. 2^-" << kMaxFracBits);
  set.coeff.validate("set.coeff");
}

}  // namespace detail

// The boundary convention every table file states (see pwl.hpp); the reader requires it.
constexpr const char* kTableConvention =
    "left-closed: a value on a breakpoint belongs to the segment on its right";

// JSON: {"function", "segments", "range", "coeff_format", "convention", "description",
// "dense": {...}, "scales": {"<j>": {...}}}.
inline void write_table_json(std::ostream& o, const TableSet& set, const std::string& description) {
  detail::check_writable(set, description);
  std::ostringstream t;
  t.imbue(std::locale::classic());
  t << std::setprecision(17) << "{\n  \"function\": " << detail::json_string(set.function)
    << ",\n  \"segments\": " << set.segments << ",\n  \"range\": [" << set.dense.lo() << ", "
    << set.dense.hi() << "],\n  \"coeff_format\": {\"total_bits\": " << set.coeff.total_bits
    << ", \"frac_bits\": " << set.coeff.frac_bits << "},\n"
    << "  \"convention\": " << detail::json_string(kTableConvention) << ",\n"
    << "  \"description\": " << detail::json_string(description) << ",\n  \"dense\": {\n";
  detail::json_table(t, set.dense, "    ");
  t << "\n  },\n  \"scales\": {\n";
  for (std::size_t i = 0; i < set.scales.size(); ++i) {
    t << "    \"" << set.min_frac_bits + static_cast<int>(i) << "\": {\n";
    detail::json_table(t, set.scales[i], "      ");
    t << "\n    }" << (i + 1 < set.scales.size() ? "," : "") << "\n";
  }
  t << "  }\n}\n";
  o << t.str();
}

// A header defining `inline const TableSet& <name>()` in etk::lut::tables.
inline void write_table_header(std::ostream& o, const TableSet& set, const std::string& name,
                               const std::string& description) {
  // ASCII letters, digits and '_' only (std::isalnum would follow the C locale).
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  ETK_CHECK(!name.empty() && letter(name[0]), "argument 'name': '" << detail::comment_text(name)
                                                  << "' is not a C++ identifier");
  for (char c : name)
    ETK_CHECK(letter(c) || (c >= '0' && c <= '9'),
              "argument 'name': '" << detail::comment_text(name) << "' is not a C++ identifier");
  detail::check_writable(set, description);
  std::ostringstream t;
  t.imbue(std::locale::classic());
  t << "// etk/lut/tables/" << name << ".hpp: generated by example_gqa_lut_search; do not edit.\n//\n";
  std::istringstream lines(description);
  for (std::string line; std::getline(lines, line);) t << "// " << detail::comment_text(line) << "\n";
  t << "#pragma once\n\n#include \"etk/lut/table_set.hpp\"\n\nETK_BEGIN_NAMESPACE\nnamespace lut {\n"
    << "namespace tables {\n\ninline const TableSet& " << name << "() {\n"
    << "  static const TableSet set{\n    " << detail::cpp_string(set.function) << ", " << set.segments
    << ", {" << set.coeff.total_bits << ", " << set.coeff.frac_bits << "},\n    "
    << detail::cpp_table(set.dense) << ",\n    " << set.min_frac_bits << ",\n    {\n";
  for (std::size_t i = 0; i < set.scales.size(); ++i)
    t << "      // j = " << set.min_frac_bits + static_cast<int>(i) << "\n      "
      << detail::cpp_table(set.scales[i]) << (i + 1 < set.scales.size() ? ",\n" : "\n");
  t << "    }};\n  return set;\n}\n\n}  // namespace tables\n}  // namespace lut\nETK_END_NAMESPACE\n";
  o << t.str();
}

namespace detail {
using JsonKind = JsonValue::Kind;

[[noreturn]] inline void bad_table_json(const std::string& path, const std::string& what) {
  ETK_THROW("argument 'json': " << path << " " << what);
}

inline const char* json_kind_name(JsonKind k) {
  switch (k) {
    case JsonKind::null: return "null";
    case JsonKind::boolean: return "a boolean";
    case JsonKind::number: return "a number";
    case JsonKind::string: return "a string";
    case JsonKind::array: return "an array";
    case JsonKind::object: return "an object";
  }
  return "?";
}

inline void expect_kind(const JsonValue& v, JsonKind k, const std::string& path) {
  if (v.kind != k)
    bad_table_json(path, std::string("must be ") + json_kind_name(k) + ", got " + json_kind_name(v.kind));
}

// The members of object v named `keys`, in that order: each present, no other key.
template <std::size_t N>
std::array<const JsonValue*, N> json_fields(const JsonValue& v, const std::string& path,
                                            const std::array<const char*, N>& keys) {
  expect_kind(v, JsonKind::object, path);
  std::array<const JsonValue*, N> out{};
  for (const auto& m : v.members) {
    std::size_t k = 0;
    while (k < N && m.first != keys[k]) ++k;
    if (k == N) bad_table_json(path, "has an unknown key " + json_string(m.first));
    out[k] = &m.second;
  }
  for (std::size_t k = 0; k < N; ++k)
    if (!out[k]) bad_table_json(path, std::string("lacks the key \"") + keys[k] + "\"");
  return out;
}

// An integer literal (no fraction or exponent) within [lo, hi].
inline int json_int(const JsonValue& v, const std::string& path, int lo, int hi) {
  expect_kind(v, JsonKind::number, path);
  if (v.text.find_first_of(".eE") != std::string::npos || !(v.number >= lo && v.number <= hi))
    bad_table_json(path, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                             "], got " + v.text);
  return static_cast<int>(v.number);
}

inline float json_float(const JsonValue& v, const std::string& path) {
  expect_kind(v, JsonKind::number, path);
  if (!(std::fabs(v.number) <= static_cast<double>(std::numeric_limits<float>::max())))
    bad_table_json(path, "is outside the float range: " + v.text);
  return static_cast<float>(v.number);
}

inline std::vector<float> json_floats(const JsonValue& v, const std::string& path) {
  expect_kind(v, JsonKind::array, path);
  std::vector<float> out;
  out.reserve(v.items.size());
  for (std::size_t i = 0; i < v.items.size(); ++i)
    out.push_back(json_float(v.items[i], path + "[" + std::to_string(i) + "]"));
  return out;
}

// {"breakpoints", "slopes", "intercepts"} on [lo, hi), with the PwlTable checks.
inline PwlTable json_table_of(const JsonValue& v, const std::string& path, double lo, double hi,
                              int max_segments) {
  const auto f = json_fields<3>(v, path, {{"breakpoints", "slopes", "intercepts"}});
  std::vector<float> b = json_floats(*f[0], path + ".breakpoints");
  std::vector<float> s = json_floats(*f[1], path + ".slopes");
  std::vector<float> k = json_floats(*f[2], path + ".intercepts");
  if (s.empty() || static_cast<long long>(s.size()) > max_segments)
    bad_table_json(path, "must have 1 to " + std::to_string(max_segments) + " segments (\"segments\"), got " +
                             std::to_string(s.size()));
#if defined(ETK_EXCEPTIONS)
  try {
    return PwlTable(std::move(b), std::move(s), std::move(k), lo, hi);
  } catch (const ::etk::invalid_argument& e) {
    bad_table_json(path, std::string("is not a valid table (") + e.what() + ")");
  }
#else
  return PwlTable(std::move(b), std::move(s), std::move(k), lo, hi);
#endif
}

// A scale key: the decimal j (no sign, no leading zero) within [0, kMaxFracBits].
inline int scale_key(const std::string& key) {
  const bool digits = !key.empty() && key.size() <= 2 && key.find_first_not_of("0123456789") == std::string::npos &&
                      (key.size() == 1 || key[0] != '0');
  const int j = digits ? std::stoi(key) : -1;
  if (j < 0 || j > kMaxFracBits)
    bad_table_json("scales", "has the key " + json_string(key) + ", expected an exponent j in [0, " +
                                 std::to_string(kMaxFracBits) + "]");
  return j;
}
}  // namespace detail

// Reads the JSON that write_table_json writes: every key present once, no other key,
// the stated convention, integers where integers belong, floats within float range,
// tables that pass PwlTable's checks with at most "segments" segments, scales keyed by
// consecutive exponents j in increasing order. Anything else throws etk::invalid_argument
// naming the offending key (or the byte offset for malformed JSON). The description is
// returned through `description` when given.
inline TableSet read_table_json(const std::string& json, std::string* description = nullptr) {
  const detail::JsonValue doc = detail::JsonParser(json).document();
  const auto f = detail::json_fields<8>(doc, "the document", {{"function", "segments", "range", "coeff_format",
                                                               "convention", "description", "dense", "scales"}});
  detail::expect_kind(*f[0], detail::JsonKind::string, "function");
  const int segments = detail::json_int(*f[1], "segments", 1, 1 << 20);
  detail::expect_kind(*f[2], detail::JsonKind::array, "range");
  if (f[2]->items.size() != 2) detail::bad_table_json("range", "must hold two numbers [lo, hi]");
  detail::expect_kind(f[2]->items[0], detail::JsonKind::number, "range[0]");
  detail::expect_kind(f[2]->items[1], detail::JsonKind::number, "range[1]");
  const double lo = f[2]->items[0].number, hi = f[2]->items[1].number;
  const auto cf = detail::json_fields<2>(*f[3], "coeff_format", {{"total_bits", "frac_bits"}});
  FixedFormat coeff;
  coeff.total_bits = detail::json_int(*cf[0], "coeff_format.total_bits", 2, 16);
  coeff.frac_bits = detail::json_int(*cf[1], "coeff_format.frac_bits", 0, 24);
  detail::expect_kind(*f[4], detail::JsonKind::string, "convention");
  if (f[4]->text != kTableConvention)
    detail::bad_table_json("convention", "must be " + detail::json_string(kTableConvention) + ", got " +
                                             detail::json_string(f[4]->text));
  detail::expect_kind(*f[5], detail::JsonKind::string, "description");
  const PwlTable dense = detail::json_table_of(*f[6], "dense", lo, hi, segments);
  detail::expect_kind(*f[7], detail::JsonKind::object, "scales");
  if (f[7]->members.empty()) detail::bad_table_json("scales", "is empty");
  std::vector<PwlTable> scales;
  const int min_j = detail::scale_key(f[7]->members.front().first);
  for (std::size_t i = 0; i < f[7]->members.size(); ++i) {
    const auto& m = f[7]->members[i];
    if (detail::scale_key(m.first) != min_j + static_cast<int>(i))
      detail::bad_table_json("scales", "keys must be consecutive exponents in increasing order from " +
                                           std::to_string(min_j) + ", got " + detail::json_string(m.first) +
                                           " at position " + std::to_string(i));
    scales.push_back(detail::json_table_of(m.second, "scales." + m.first, lo, hi, segments));
  }
  if (description) *description = f[5]->text;
  return TableSet{f[0]->text, segments, coeff, dense, min_j, std::move(scales)};
}

inline TableSet read_table_json(std::istream& in, std::string* description = nullptr) {
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ETK_CHECK(!in.bad(), "argument 'in': the stream failed while reading the table");
  return read_table_json(text, description);
}

}  // namespace lut
ETK_END_NAMESPACE
