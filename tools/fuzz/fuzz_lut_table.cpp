// tools/fuzz/fuzz_lut_table.cpp: libFuzzer harness of the GQA-LUT table files
// (etk/lut/table_io.hpp).
//
// Each input is used twice:
//  1. as a table file: read_table_json either rejects it with etk::invalid_argument or
//     returns a set, which must then survive write_table_json -> read_table_json bit for
//     bit (every float, the range, the strings) and give a well-formed C++ header;
//  2. as hostile strings: its two halves become the function name and the description
//     of a fixed table set; both writers either reject them (invalid UTF-8) or write
//     files whose JSON reads back to the same strings and whose header passes the same
//     checks (printable ASCII only, no line ending in a backslash, #pragma once intact).
// Any other exception, a mismatch (abort) or a sanitizer report is a finding.
#include <etk/lut/table_io.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

using etk::lut::PwlTable;
using etk::lut::TableSet;

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "fuzz_lut_table: " << what << std::endl;
    std::abort();
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same(const PwlTable& a, const PwlTable& b) {
  return same_bits(a.breakpoints(), b.breakpoints()) && same_bits(a.slopes(), b.slopes()) &&
         same_bits(a.intercepts(), b.intercepts()) && a.lo() == b.lo() && a.hi() == b.hi();
}

bool same(const TableSet& a, const TableSet& b) {
  if (a.function != b.function || a.segments != b.segments || a.coeff.total_bits != b.coeff.total_bits ||
      a.coeff.frac_bits != b.coeff.frac_bits || a.min_frac_bits != b.min_frac_bits || !same(a.dense, b.dense) ||
      a.scales.size() != b.scales.size())
    return false;
  for (std::size_t i = 0; i < a.scales.size(); ++i)
    if (!same(a.scales[i], b.scales[i])) return false;
  return true;
}

// The header is inert text around the data: printable ASCII and newlines only, no line
// ending in a backslash, and `#pragma once` as the first line after the comment block.
void check_header(const std::string& text) {
  for (char c : text) require((c >= 0x20 && c < 0x7f) || c == '\n', "header holds a byte outside printable ASCII");
  std::istringstream lines(text);
  bool pragma = false;
  for (std::string line; std::getline(lines, line);) {
    require(line.empty() || line.back() != '\\', "a header line ends in a backslash");
    if (!pragma && line.rfind("//", 0) != 0) {
      require(line == "#pragma once", "the comment block is not followed by #pragma once");
      pragma = true;
    }
  }
  require(pragma, "no #pragma once");
}

// Writes set, reads it back: the same set and description, and a well-formed header.
void round_trip(const TableSet& set, const std::string& description) {
  std::ostringstream json, header;
  etk::lut::write_table_json(json, set, description);
  std::string back_description;
  const TableSet back = etk::lut::read_table_json(json.str(), &back_description);
  require(same(set, back), "the JSON did not read back to the same set");
  require(back_description == description, "the JSON did not read back to the same description");
  etk::lut::write_table_header(header, set, "fuzzed_table", description);
  check_header(header.str());
}

const TableSet& fixed_set() {
  static const TableSet set{"gelu", 3, {8, 6},
                            PwlTable({-1.0f, 0.5f}, {0.0f, 0.5f, 1.0f}, {0.0f, 0.25f, -0.125f}, -4.0, 4.0), 2,
                            {PwlTable({-1.0f, 0.5f}, {0.0f, 0.5f, 1.0f}, {0.0f, 0.25f, -0.125f}, -4.0, 4.0)}};
  return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    std::string description;
    const TableSet set = etk::lut::read_table_json(text, &description);
    round_trip(set, description);
  } catch (const etk::invalid_argument&) {
  }
  TableSet named = fixed_set();
  named.function = text.substr(0, size / 2);
  try {
    round_trip(named, text.substr(size / 2));
  } catch (const etk::invalid_argument& e) {
    // Only invalid UTF-8 may be refused.
    require(std::strstr(e.what(), "UTF-8") != nullptr, e.what());
  }
  return 0;
}
