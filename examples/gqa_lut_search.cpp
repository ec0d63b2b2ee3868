// gqa_lut_search: searches GQA-LUT piecewise-linear tables for a function and writes them
// as JSON and as a C++ header (etk::lut::tables::<name>()).
//
//   example_gqa_lut_search --function gelu --range -4 4 --segments 8 \
//       --coeff-bits 8 --coeff-frac 6 --frac-bits 0 6 --json gelu_8.json --header gelu_8.hpp
//
// Two searches run: one on the dense grid (the float table) and, unless --no-int8, one
// per input scale 2^-j on the int8 grid (the integer tables). Coefficients are least
// squares under the fixed-point format (--coefficients secant for the paper's secants).
// The search time of each is printed (the goal: 8-segment GELU, population 50,
// 500 generations, under 1 s on one core).
#include <etk/lut/gqa_search.hpp>
#include <etk/lut/table_io.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

namespace {

void usage() {
  std::cerr << "usage: example_gqa_lut_search --function NAME [--range LO HI] [--segments N]\n"
               "  [--coeff-bits B] [--coeff-frac F] [--frac-bits JMIN JMAX]\n"
               "  [--coefficients lsq|secant] [--population P] [--generations G]\n"
               "  [--restarts R] [--seed S] [--step H] [--no-int8] [--name ID]\n"
               "  [--json FILE] [--header FILE]\n"
               "functions: gelu gelu_tanh hswish hsigmoid silu(swish) sigmoid tanh exp "
               "reciprocal rsqrt\n";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace etk::lut;
  try {
    GqaConfig c;
    c.coefficients = Coefficients::least_squares;
    std::string function_name, json_path, header_path, name;
    bool range_given = false, int8 = true;
    auto need = [&](int& i, int count) {
      if (i + count >= argc) {
        std::cerr << "error: " << argv[i] << " needs " << count << " value(s)\n";
        usage();
        std::exit(2);
      }
    };
    auto number = [](const char* text) {
      char* end = nullptr;
      const double v = std::strtod(text, &end);
      if (end == text || *end != '\0') throw etk::invalid_argument(std::string("not a number: ") + text);
      return v;
    };
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--function") { need(i, 1); function_name = argv[++i]; }
      else if (a == "--range") { need(i, 2); c.lo = number(argv[++i]); c.hi = number(argv[++i]); range_given = true; }
      else if (a == "--segments") { need(i, 1); c.segments = static_cast<int>(number(argv[++i])); }
      else if (a == "--coeff-bits") { need(i, 1); c.coeff.total_bits = static_cast<int>(number(argv[++i])); }
      else if (a == "--coeff-frac") { need(i, 1); c.coeff.frac_bits = static_cast<int>(number(argv[++i])); }
      else if (a == "--frac-bits") { need(i, 2); c.min_frac_bits = static_cast<int>(number(argv[++i])); c.max_frac_bits = static_cast<int>(number(argv[++i])); }
      else if (a == "--coefficients") {
        need(i, 1);
        const std::string v = argv[++i];
        if (v == "lsq") c.coefficients = Coefficients::least_squares;
        else if (v == "secant") c.coefficients = Coefficients::secant;
        else throw etk::invalid_argument("--coefficients must be lsq or secant, got " + v);
      }
      else if (a == "--population") { need(i, 1); c.population = static_cast<int>(number(argv[++i])); }
      else if (a == "--generations") { need(i, 1); c.generations = static_cast<int>(number(argv[++i])); }
      else if (a == "--restarts") { need(i, 1); c.restarts = static_cast<int>(number(argv[++i])); }
      else if (a == "--seed") { need(i, 1); c.seed = static_cast<std::uint64_t>(number(argv[++i])); }
      else if (a == "--step") { need(i, 1); c.grid_step = number(argv[++i]); }
      else if (a == "--no-int8") int8 = false;
      else if (a == "--name") { need(i, 1); name = argv[++i]; }
      else if (a == "--json") { need(i, 1); json_path = argv[++i]; }
      else if (a == "--header") { need(i, 1); header_path = argv[++i]; }
      else if (a == "--help" || a == "-h") { usage(); return 0; }
      else { std::cerr << "error: unknown option " << a << "\n"; usage(); return 2; }
    }
    if (function_name.empty()) { usage(); return 2; }
    c.function = function_from_name(function_name);  // rejects unsupported names
    if (!range_given) {
      c.lo = default_range(c.function).lo;
      c.hi = default_range(c.function).hi;
    }
    if (name.empty()) name = std::string(etk::lut::name(c.function)) + "_" + std::to_string(c.segments);

    GqaConfig dense_cfg = c;
    dense_cfg.fitness = Fitness::dense_grid;
    auto t0 = std::chrono::steady_clock::now();
    const GqaResult dense = gqa_search(dense_cfg);
    const double dense_seconds = seconds_since(t0);

    TableSet set{etk::lut::name(c.function), c.segments, c.coeff, dense.table, c.min_frac_bits, {}};
    double int8_seconds = 0;
    std::vector<double> mse_int8;
    if (int8) {
      GqaConfig int8_cfg = c;
      int8_cfg.fitness = Fitness::int8_grid;
      t0 = std::chrono::steady_clock::now();
      const GqaResult r = gqa_search(int8_cfg);
      int8_seconds = seconds_since(t0);
      for (const auto& s : r.scales) {
        set.scales.push_back(s.table);
        mse_int8.push_back(s.mse_int8);
      }
    } else {
      for (const auto& s : dense.scales) {
        set.scales.push_back(s.table);
        mse_int8.push_back(s.mse_int8);
      }
    }

    std::ostringstream d;
    d << std::setprecision(4) << name << ": " << set.function << " on [" << c.lo << ", " << c.hi
      << "), " << c.segments << " segments, coefficients Q" << c.coeff.total_bits - c.coeff.frac_bits
      << "." << c.coeff.frac_bits << " ("
      << (c.coefficients == Coefficients::least_squares ? "least squares" : "secants")
      << "), population " << c.population << ", generations " << c.generations << ", restarts "
      << c.restarts << ", seed " << c.seed << ".\n"
      << "dense-grid MSE of the float table: " << dense.mse_dense << "\n"
      << "int8-grid MSE per input scale j = " << c.min_frac_bits << ".." << c.max_frac_bits
      << (int8 ? " (fitted per scale):" : " (dense breakpoints rounded):");
    for (double m : mse_int8) d << " " << m;
    const std::string description = d.str();

    std::cout << description << "\n"
              << "search time: dense " << dense_seconds << " s (" << dense.evaluations
              << " evaluations)";
    if (int8) std::cout << ", int8 grid " << int8_seconds << " s";
    std::cout << "\n";
    if (!json_path.empty()) {
      std::ofstream f(json_path);
      write_table_json(f, set, description);
      if (!f) throw etk::invalid_argument("cannot write " + json_path);
    }
    if (!header_path.empty()) {
      std::ofstream f(header_path);
      write_table_header(f, set, name, description);
      if (!f) throw etk::invalid_argument("cannot write " + header_path);
    }
    return 0;
  } catch (const etk::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
