// etk/lut/gqa_search.hpp: GQA-LUT's genetic search for piecewise-linear tables.
//
// An individual is the list of interior breakpoints (S-1 genes for S segments) inside the
// range. Fitness is the mean squared error of the table it defines on a sample grid:
//  * Fitness::dense_grid: x = lo + 0.01 i over [lo, hi) (the reference's fitness). One
//    search; its best breakpoints are then rounded to the 2^-j grid for every input
//    scale j, keeping the coefficients (stored, never re-derived).
//  * Fitness::int8_grid (quantization aware): one search per input scale j, on the int8
//    inputs q 2^-j inside [lo, hi), with the genes snapped to the 2^-j grid before they
//    are evaluated, i.e. exactly the table the integer engine will run.
// Each segment's line is either the secant through the function at the segment's ends
// (the outer ends at far anchors, as in the reference) rounded to the coefficient format
// (Coefficients::secant, the paper), or the least-squares line under the format
// (Coefficients::least_squares, etk's refinement, see etk/lut/fit.hpp) except for outer
// segments whose anchor is far away (GELU, SiLU, HSwish, sigmoid, ...: the outer lines
// are the asymptotes, so the table extrapolates sanely beyond its range).
//
// The algorithm follows the reference (DEAP eaSimple): population 50, tournament of 3,
// two-point crossover with probability 0.7 on consecutive pairs, mutation with
// probability 0.2, 500 generations. Mutation, per gene: with probability 0.05 per input
// scale j (j from min_frac_bits to max_frac_bits) snap it to the 2^-j grid (the paper's
// rounding mutation), otherwise with probability 0.1 add N(0, 0.2); then clip to the
// range. Departures from the reference, all to make one seed's result reliable (its GA
// varies by +-20% in MSE from seed to seed): the best individual ever evaluated is kept;
// `restarts` independent runs are made and the best kept; the winner's breakpoints are
// polished by coordinate descent. The paper's configuration is restarts = 1,
// polish = false. The random source is a fixed mt19937_64 with etk's own
// uniform and normal transforms, so a seed gives the same tables on every platform.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/fit.hpp"
#include "etk/lut/fixed_point.hpp"
#include "etk/lut/functions.hpp"
#include "etk/lut/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

enum class Fitness { dense_grid, int8_grid };
enum class Coefficients { secant, least_squares };

struct GqaConfig {
  Function function = Function::gelu;
  double lo = -4.0;  // fitting range [lo, hi)
  double hi = 4.0;
  int segments = 8;
  FixedFormat coeff{8, 6};
  int min_frac_bits = 0;  // input scales 2^-j, j in [min_frac_bits, max_frac_bits]
  int max_frac_bits = 6;
  Fitness fitness = Fitness::dense_grid;
  Coefficients coefficients = Coefficients::secant;
  double grid_step = 0.01;
  int population = 50;
  int generations = 500;
  double crossover_prob = 0.7;
  double mutation_prob = 0.2;
  int tournament = 3;
  double sigma = 0.2;
  double gauss_prob = 0.1;
  double round_prob = 0.05;  // per input scale
  int restarts = 8;          // independent runs (seeds derived from `seed`); the best wins
  bool polish = true;        // coordinate descent on the best breakpoints after the runs
  std::uint64_t seed = 42;
};

struct GqaScaleTable {
  int frac_bits;       // j: the table serves inputs at scale 2^-j
  PwlTable table;      // breakpoints on the 2^-j grid
  double mse_int8;     // on the int8 inputs q 2^-j in [lo, hi) (NaN if there are none)
  double mse_dense;    // on the dense grid
};

struct GqaResult {
  PwlTable table;                     // the best table found (dense: unrounded breakpoints)
  double mse_dense;                   // its MSE on the dense grid
  std::vector<GqaScaleTable> scales;  // one per input scale j
  long evaluations = 0;               // fitness evaluations performed
};

namespace detail {

// Deterministic random numbers: mt19937_64 with fixed transforms (the standard
// distributions are implementation-defined).
class GqaRandom {
 public:
  explicit GqaRandom(std::uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) {  // [lo, hi]
    return lo + static_cast<int>(uniform() * (hi - lo + 1));
  }
  double normal(double mean, double sigma) {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return mean + sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::mt19937_64 engine_;
};

inline double snap(double v, int j) { return std::ldexp(std::round(std::ldexp(v, j)), -j); }

// v snapped to the 2^-j grid, kept inside the grid points of [lo, hi].
inline double snap_inside(double v, int j, double lo, double hi) {
  const double first = std::ldexp(std::ceil(std::ldexp(lo, j)), -j);
  const double last = std::ldexp(std::floor(std::ldexp(hi, j)), -j);
  return std::min(std::max(snap(v, j), first), std::max(first, last));
}

// The lines of the table with sorted breakpoints `bp` under the configured rule.
inline std::vector<Line> fit_lines(const GqaConfig& c, const Samples& samples,
                                   const std::vector<double>& bp) {
  const Range anchors = secant_anchors(c.function, {c.lo, c.hi});
  const int segments = static_cast<int>(bp.size()) + 1;
  std::vector<Line> lines(segments);
  std::size_t begin = 0;
  for (int i = 0; i < segments; ++i) {
    const double a = i == 0 ? anchors.lo : bp[i - 1];
    const double b = i + 1 == segments ? anchors.hi : bp[i];
    lines[i] = secant_line(c.function, a, b, c.coeff);
    // An outer segment anchored far outside the range (a function with a linear
    // asymptote there) keeps its secant, i.e. the asymptote, so that inputs beyond the
    // range stay accurate; every other segment gets its least-squares line.
    const bool asymptote = (i == 0 && anchors.lo < c.lo - 10 * (c.hi - c.lo)) ||
                           (i + 1 == segments && anchors.hi > c.hi + 10 * (c.hi - c.lo));
    const std::size_t end =
        i + 1 < segments ? std::max(begin, samples.first_at_or_above(bp[i])) : samples.size();
    if (c.coefficients == Coefficients::least_squares && !asymptote)
      lines[i] = least_squares_line(samples.moments(begin, end), c.coeff, lines[i]);
    begin = end;
  }
  return lines;
}

inline PwlTable make_table(const GqaConfig& c, const std::vector<double>& bp,
                           const std::vector<Line>& lines) {
  std::vector<float> b(bp.begin(), bp.end()), s, k;
  for (const Line& l : lines) {
    s.push_back(static_cast<float>(l.slope));
    k.push_back(static_cast<float>(l.intercept));
  }
  return table_dropping_empty_segments(b, s, k, c.lo, c.hi);
}

struct GqaRun {
  std::vector<double> best;  // sorted breakpoints (snapped if `snap_bits` >= 0)
  double best_mse;
  long evaluations;
};

// One genetic search on `samples`. snap_bits >= 0: genes are snapped to that grid before
// evaluation.
inline GqaRun run_ga(const GqaConfig& c, const Samples& samples, int snap_bits,
                     std::uint64_t seed) {
  GqaRandom rng(seed);
  const int genes = c.segments - 1;
  const double n = static_cast<double>(samples.size());
  GqaRun run{{}, 0.0, 0};
  auto decode = [&](std::vector<double> g) {
    if (snap_bits >= 0)
      for (auto& v : g) v = snap_inside(v, snap_bits, c.lo, c.hi);
    std::sort(g.begin(), g.end());
    return g;
  };
  auto evaluate = [&](const std::vector<double>& g) {
    const std::vector<double> bp = decode(g);
    ++run.evaluations;
    const double mse = segments_sse(samples, bp, fit_lines(c, samples, bp)) / n;
    if (run.evaluations == 1 || mse < run.best_mse) {
      run.best = bp;
      run.best_mse = mse;
    }
    return mse;
  };
  std::vector<std::vector<double>> pop(c.population, std::vector<double>(genes));
  std::vector<double> fit(c.population);
  for (int p = 0; p < c.population; ++p) {
    for (auto& v : pop[p]) v = rng.uniform(c.lo, c.hi);
    fit[p] = evaluate(pop[p]);
  }
  const int scales = c.max_frac_bits - c.min_frac_bits + 1;
  std::vector<std::vector<double>> next(c.population);
  std::vector<double> next_fit(c.population);
  std::vector<char> changed(c.population);
  for (int gen = 0; gen < c.generations; ++gen) {
    for (int p = 0; p < c.population; ++p) {  // tournament selection
      int winner = rng.integer(0, c.population - 1);
      for (int t = 1; t < c.tournament; ++t) {
        const int other = rng.integer(0, c.population - 1);
        if (fit[other] < fit[winner]) winner = other;
      }
      next[p] = pop[winner];
      next_fit[p] = fit[winner];
      changed[p] = 0;
    }
    for (int p = 1; p < c.population; p += 2) {  // two-point crossover of pairs
      if (genes < 2 || rng.uniform() >= c.crossover_prob) continue;
      int a = rng.integer(1, genes), b = rng.integer(1, genes - 1);
      if (b >= a) ++b; else std::swap(a, b);
      for (int g = a; g < b; ++g) std::swap(next[p - 1][g], next[p][g]);
      changed[p - 1] = changed[p] = 1;
    }
    for (int p = 0; p < c.population; ++p) {  // rounding + Gaussian mutation
      if (rng.uniform() >= c.mutation_prob) continue;
      for (auto& v : next[p]) {
        const double u = rng.uniform();
        if (u < c.round_prob * scales)
          v = snap(v, c.min_frac_bits + static_cast<int>(u / c.round_prob));
        else if (u >= 1.0 - c.gauss_prob)
          v += rng.normal(0.0, c.sigma);
        v = std::min(std::max(v, c.lo), c.hi);
      }
      changed[p] = 1;
    }
    for (int p = 0; p < c.population; ++p)
      if (changed[p]) next_fit[p] = evaluate(next[p]);
    pop.swap(next);
    fit.swap(next_fit);
  }
  return run;
}

// Coordinate descent on the breakpoints: moves of +-step for step = 2^-2 .. 2^-12 (down
// to the snap grid), accepting any move that lowers the MSE.
inline void polish(const GqaConfig& c, const Samples& samples, int snap_bits, GqaRun& run) {
  const double n = static_cast<double>(samples.size());
  auto mse_of = [&](std::vector<double> bp) {
    if (snap_bits >= 0)
      for (auto& v : bp) v = snap_inside(v, snap_bits, c.lo, c.hi);
    std::sort(bp.begin(), bp.end());
    ++run.evaluations;
    return std::make_pair(segments_sse(samples, bp, fit_lines(c, samples, bp)) / n, bp);
  };
  const int finest = snap_bits >= 0 ? snap_bits : 12;
  for (int e = 2; e <= finest; ++e) {
    const double step = std::ldexp(1.0, -e);
    for (int sweep = 0; sweep < 64; ++sweep) {
      bool improved = false;
      for (std::size_t g = 0; g < run.best.size(); ++g) {
        for (double d : {step, -step}) {
          std::vector<double> cand = run.best;
          cand[g] = std::min(std::max(cand[g] + d, c.lo), c.hi);
          const auto r = mse_of(cand);
          if (r.first < run.best_mse) {
            run.best_mse = r.first;
            run.best = r.second;
            improved = true;
          }
        }
      }
      if (!improved) break;
    }
  }
}

// `restarts` runs with derived seeds, the best kept, then polished.
inline GqaRun search(const GqaConfig& c, const Samples& samples, int snap_bits,
                     std::uint64_t seed) {
  GqaRun best{{}, 0.0, 0};
  for (int r = 0; r < c.restarts; ++r) {
    GqaRun run = run_ga(c, samples, snap_bits, seed + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(r));
    const long evaluations = best.evaluations + run.evaluations;
    if (r == 0 || run.best_mse < best.best_mse) best = run;
    best.evaluations = evaluations;
  }
  if (c.polish && c.segments > 1) polish(c, samples, snap_bits, best);
  return best;
}

inline void validate(const GqaConfig& c) {
  ETK_CHECK(std::isfinite(c.lo) && std::isfinite(c.hi) && c.lo < c.hi,
            "argument 'range': needs finite lo < hi, got [" << c.lo << ", " << c.hi << ")");
  ETK_CHECK(c.segments >= 1 && c.segments <= 64,
            "argument 'segments' must be in [1, 64], got " << c.segments);
  c.coeff.validate("coeff");
  ETK_CHECK(c.min_frac_bits >= 0 && c.min_frac_bits <= c.max_frac_bits && c.max_frac_bits <= 16,
            "argument 'frac_bits': needs 0 <= min <= max <= 16, got [" << c.min_frac_bits
            << ", " << c.max_frac_bits << "]");
  ETK_CHECK(c.restarts >= 1, "argument 'restarts' must be >= 1, got " << c.restarts);
  ETK_CHECK(c.population >= 2, "argument 'population' must be >= 2, got " << c.population);
  ETK_CHECK(c.generations >= 0, "argument 'generations' must be >= 0, got " << c.generations);
  ETK_CHECK(c.tournament >= 1, "argument 'tournament' must be >= 1, got " << c.tournament);
  for (double p : {c.crossover_prob, c.mutation_prob, c.gauss_prob})
    ETK_CHECK(p >= 0 && p <= 1, "argument 'probability' must be in [0, 1], got " << p);
  ETK_CHECK(c.round_prob >= 0 && c.round_prob * (c.max_frac_bits - c.min_frac_bits + 1) + c.gauss_prob <= 1,
            "argument 'round_prob': rounding and Gaussian probabilities exceed 1");
  ETK_CHECK(std::isfinite(c.sigma) && c.sigma >= 0, "argument 'sigma' must be >= 0, got " << c.sigma);
}

}  // namespace detail

// Searches tables for c.function on [c.lo, c.hi); see the header comment.
inline GqaResult gqa_search(const GqaConfig& c) {
  detail::validate(c);
  const Samples dense = dense_samples(c.function, c.lo, c.hi, c.grid_step);
  auto scale_entry = [&](int j, const PwlTable& t) {  // NaN: no int8 input in the range
    const bool any = std::ceil(std::ldexp(c.lo, j)) <= 127 && std::ldexp(c.hi, j) > -128;
    return GqaScaleTable{j, t,
                         any ? table_mse(t, int8_samples(c.function, c.lo, c.hi, j))
                             : std::numeric_limits<double>::quiet_NaN(),
                         table_mse(t, dense)};
  };
  if (c.fitness == Fitness::dense_grid) {
    const detail::GqaRun run = detail::search(c, dense, -1, c.seed);
    const std::vector<Line> lines = detail::fit_lines(c, dense, run.best);
    GqaResult r{detail::make_table(c, run.best, lines), 0.0, {}, run.evaluations};
    r.mse_dense = table_mse(r.table, dense);
    for (int j = c.min_frac_bits; j <= c.max_frac_bits; ++j) {
      std::vector<double> bp = run.best;
      for (auto& v : bp) v = detail::snap_inside(v, j, c.lo, c.hi);
      r.scales.push_back(scale_entry(j, detail::make_table(c, bp, lines)));
    }
    return r;
  }
  GqaResult r{PwlTable({}, {0.0f}, {0.0f}, c.lo, c.hi), 0.0, {}, 0};
  for (int j = c.min_frac_bits; j <= c.max_frac_bits; ++j) {
    const Samples grid = int8_samples(c.function, c.lo, c.hi, j);
    const detail::GqaRun run =
        detail::search(c, grid, j, c.seed + 0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(j + 1));
    r.evaluations += run.evaluations;
    r.scales.push_back(scale_entry(j, detail::make_table(c, run.best, detail::fit_lines(c, grid, run.best))));
  }
  r.table = r.scales.back().table;  // the finest scale
  r.mse_dense = r.scales.back().mse_dense;
  return r;
}

}  // namespace lut
ETK_END_NAMESPACE
