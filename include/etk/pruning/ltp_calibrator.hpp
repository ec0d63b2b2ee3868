// etk/pruning/ltp_calibrator.hpp: choose LTP thresholds for a budget.
//
// Given calibration inputs, find theta_final of the linear schedule (ltp.hpp) so that the
// pruned model meets a target: an overall keep ratio (tokens entering each layer,
// averaged over layers and inputs, relative to the unpruned length) or a FLOPs ratio
// under a per-layer cost model cost(n) = a*n + b*n^2 (linear layers + attention).
// Both metrics fall (weakly) as theta_final rises, so bisection finds the smallest
// theta_final whose metric is <= target, i.e. the most tokens that still meet the budget.
// The measurement is a callback: run the real model with the thresholds (exact, since the
// scores of later layers depend on what was pruned earlier), or replay scores recorded
// from dense runs with ltp_replay_counts (cheap, approximate: after pruning, survivors'
// scores grow because each query's probability mass is spread over fewer keys).
#pragma once

#include <functional>
#include <vector>

#include <Eigen/Core>

#include "etk/config.hpp"
#include "etk/pruning/ltp.hpp"

ETK_BEGIN_NAMESPACE

// What an LTP budget counts (named apart from search::BudgetKind, the bit budget).
enum class LtpBudgetKind { keep_ratio, flops_ratio };

struct LtpBudget {
  LtpBudgetKind kind = LtpBudgetKind::keep_ratio;
  double target = 0.5;  // in (0, 1]
};

// FLOPs of one layer on n tokens: per_token * n + per_token_pair * n^2.
struct LayerCostModel {
  double per_token = 1.0;
  double per_token_pair = 0.0;
  // A transformer encoder layer: Q/K/V/O projections 8 h^2, FFN 4 h f FLOPs per token;
  // scores and P.V 4 h FLOPs per (query, key) pair.
  static LayerCostModel transformer(double hidden, double ffn) {
    return {8.0 * hidden * hidden + 4.0 * hidden * ffn, 4.0 * hidden};
  }
  double operator()(double n) const { return per_token * n + per_token_pair * n * n; }
};

// The tokens entering each layer for one input, and its unpruned length.
struct TokenCounts {
  std::vector<std::ptrdiff_t> per_layer;
  std::ptrdiff_t full = 0;
};

// The achieved metric over a set of inputs (sum of pruned cost / sum of dense cost).
inline double budget_achieved(const std::vector<TokenCounts>& counts, LtpBudgetKind kind,
                              const LayerCostModel& cost = {}) {
  ETK_CHECK(!counts.empty(), "argument 'counts' is empty (no calibration input)");
  double num = 0, den = 0;
  for (const TokenCounts& c : counts) {
    ETK_CHECK(c.full > 0, "argument 'counts' holds an input of length " << c.full);
    for (std::ptrdiff_t n : c.per_layer) {
      ETK_CHECK(n >= 0 && n <= c.full, "argument 'counts' holds a layer count " << n
                                           << " outside [0, " << c.full << "]");
      num += kind == LtpBudgetKind::keep_ratio ? double(n) : cost(double(n));
      den += kind == LtpBudgetKind::keep_ratio ? double(c.full) : cost(double(c.full));
    }
  }
  return num / den;
}

struct LtpCalibratorOptions {
  bool reach_final = false;    // schedule form, see ltp_linear_schedule
  double theta_max = 1.0;      // initial upper bracket (doubled while the target is unmet)
  double tolerance = 2e-3;     // stop when |achieved - target| <= tolerance
  int max_iterations = 40;
  LayerCostModel cost;         // used for LtpBudgetKind::flops_ratio
};

struct LtpCalibration {
  double theta_final = 0;
  std::vector<float> thresholds;
  double achieved = 1;  // the metric at theta_final
  int evaluations = 0;
};

// measure(thresholds) runs the calibration inputs and returns their token counts.
inline LtpCalibration calibrate_ltp(
    int num_layers, const LtpBudget& budget,
    const std::function<std::vector<TokenCounts>(const std::vector<float>&)>& measure,
    const LtpCalibratorOptions& opt = {}) {
  check::positive("num_layers", num_layers);
  ETK_CHECK(budget.target > 0 && budget.target <= 1,
            "argument 'budget.target' must be in (0, 1], got " << budget.target);
  check::positive_finite("theta_max", opt.theta_max);
  ETK_CHECK(opt.tolerance >= 0, "argument 'tolerance' must be >= 0, got " << opt.tolerance);
  ETK_CHECK(static_cast<bool>(measure), "argument 'measure' is empty");
  int evaluations = 0;
  auto eval = [&](double theta) {
    LtpCalibration r;
    r.theta_final = theta;
    r.thresholds = ltp_linear_schedule(num_layers, theta, opt.reach_final);
    r.achieved = budget_achieved(measure(r.thresholds), budget.kind, opt.cost);
    r.evaluations = ++evaluations;
    return r;
  };
  const auto meets = [&](const LtpCalibration& r) { return r.achieved <= budget.target; };
  LtpCalibration lo = eval(0.0);  // the metric is highest here
  if (lo.achieved <= budget.target + opt.tolerance) return lo;
  LtpCalibration hi = eval(opt.theta_max);
  while (!meets(hi) && evaluations < opt.max_iterations) {
    lo = hi;
    hi = eval(2 * hi.theta_final);
  }
  // Invariant: lo misses the target (too many tokens), hi meets it. The metric moves in
  // steps (token counts), so also stop when the bracket no longer shrinks.
  while (meets(hi) && hi.achieved < budget.target - opt.tolerance &&
         evaluations < opt.max_iterations && hi.theta_final - lo.theta_final > 1e-9 * hi.theta_final) {
    LtpCalibration mid = eval(0.5 * (lo.theta_final + hi.theta_final));
    (meets(mid) ? hi : lo) = mid;
  }
  hi.evaluations = evaluations;
  return hi;
}

// Replays per-layer importance scores recorded from dense runs: scores[l] holds layer l's
// scores of every token of the input. Tokens entering layer l+1 are those entering layer l
// whose layer-l score passes theta_l (protected tokens always, at least one survivor).
template <typename T>
TokenCounts ltp_replay_counts(const std::vector<Eigen::Matrix<T, Eigen::Dynamic, 1>>& scores,
                              Span<float> thresholds, const LtpHardOptions& opt = {}) {
  check_schedule(thresholds);
  check::equal("scores", static_cast<std::ptrdiff_t>(scores.size()), "number of layers", thresholds.size());
  TokenCounts c;
  c.full = scores[0].size();
  KeepSet alive = all_kept(c.full), keep;
  detail::pruning::protected_flags(opt.selection, c.full);  // validates the indices
  LtpHardOptions local = opt;
  for (std::size_t l = 0; l < scores.size(); ++l) {
    check::equal("scores", scores[l].size(), "tokens per layer", c.full);
    c.per_layer.push_back(static_cast<std::ptrdiff_t>(alive.size()));
    Eigen::Matrix<T, Eigen::Dynamic, 1> s(alive.size());
    for (std::size_t j = 0; j < alive.size(); ++j) s[j] = scores[l][alive[j]];
    local.selection.protected_indices.clear();  // protected indices, renumbered
    for (TokenIndex p : opt.selection.protected_indices)
      for (std::size_t j = 0; j < alive.size(); ++j)
        if (alive[j] == p) local.selection.protected_indices.push_back(static_cast<TokenIndex>(j));
    ltp_keep(s, thresholds[static_cast<std::ptrdiff_t>(l)], keep, local);
    for (std::size_t j = 0; j < keep.size(); ++j) keep[j] = alive[keep[j]];
    alive.swap(keep);
  }
  return c;
}

ETK_END_NAMESPACE
