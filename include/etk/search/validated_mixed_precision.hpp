// etk/search/validated_mixed_precision.hpp: mixed precision a user can trust.
//
// The searches of mixed_precision.hpp optimise a prediction (summed single-tensor damage
// on calibration data); on a real model the prediction can be badly wrong, and the
// configuration it returns can lose to plain uniform quantization at the same budget.
// This header adds what makes the answer never worse than uniform on held-out data:
//  * uniform_configuration: the highest single width whose all-uniform configuration
//    meets the budget (always a candidate).
//  * second_order_sensitivity: a HAWQ-V2-style objective, damage_i(b) = t_i * ||Q_b(W_i)
//    - W_i||^2, with the curvature t_i of tensor i estimated from one measured probe:
//    KL(p || p_delta) ~ 1/2 delta^T F delta, so with F restricted to tensor i taken as
//    t_i I, t_i = damage_i(probe) / ||Q_probe(W_i) - W_i||^2 (the constant folds in).
//  * fill_from_probe: a table whose small tensors were measured at the probe width only,
//    completed at every width by the same second-order estimate.
//  * refine_on_model: a greedy that re-evaluates the real model after each step. From a
//    feasible start it tries moves "raise tensor i one width, pay for it by lowering the
//    tensors that the additive table says hurt least per bit saved", best predicted first,
//    `batch` at a time, and keeps a move only when the measured damage falls. Its result
//    is never worse (measured, on the calibration data) than its start.
//  * choose_on_validation: scores every candidate on validation data (disjoint from the
//    calibration data that fitted the tables) and returns the best; ties go to the earlier
//    candidate, so listing the uniform configuration first means a mixed configuration
//    is returned only when it is strictly better on validation.
//    choose_on_validation_in_parts makes the same choice for less: when a score is a sum
//    over parts of the validation data (errors per group of lines), a candidate stops as
//    soon as its partial errors exceed a complete candidate's (exact, not a sample).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/context.hpp"
#include "etk/search/mixed_precision.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

// The summed single-tensor damage the table predicts for a configuration (every width
// must be one of the table's for its tensor).
inline double predicted_damage(const SensitivityTable& table, const BitConfig& config, Metric metric) {
  ETK_CHECK(config.size() == table.tensors(), "argument 'config' has " << config.size()
                                                  << " entries, expected " << table.tensors());
  double d = 0;
  for (std::size_t i = 0; i < config.size(); ++i) {
    const auto& b = table.bits[i];
    const auto it = std::find(b.begin(), b.end(), config[i]);
    ETK_CHECK(it != b.end(), "argument 'config': tensor " << i << " at " << config[i]
                                                           << " bits, which the table has not measured");
    d += metric_value(table.damage[i][std::size_t(it - b.begin())], metric);
  }
  return d;
}

// The all-`w` configuration for the highest w of `widths` whose cost meets the budget.
inline BitConfig uniform_configuration(const std::vector<QuantTensor>& tensors, std::vector<int> widths,
                                       const Budget& budget) {
  ETK_CHECK(!tensors.empty(), "argument 'tensors' is empty");
  widths = detail::normalized_candidates(std::move(widths), 0);
  const double limit = budget_limit(tensors, budget);
  for (int w : widths) {
    double cost = 0;
    for (const auto& t : tensors) cost += tensor_cost(t, budget.kind, w);
    if (detail::within_budget(cost, limit)) return BitConfig(tensors.size(), w);
  }
  ETK_THROW("argument 'budget': even " << widths.back() << " bits everywhere costs more than "
                                       << limit);
}

namespace detail {
inline void check_errors(const std::vector<double>& errors, std::size_t tensor) {
  for (double e : errors)
    ETK_CHECK(std::isfinite(e) && e >= 0, "argument 'errors': tensor " << tensor << " has error " << e
                                                                        << ", expected finite and >= 0");
}

// One tensor's damage at each width of `errors` from the damage d0 measured at the probe,
// whose weight error is e0: d0 * errors[k] / e0 (a probe that changed nothing carries no
// curvature information: zero damage).
inline std::vector<Damage> scaled_by_error(const std::vector<double>& errors, double e0, const Damage& d0) {
  std::vector<Damage> d;
  for (double e : errors) {
    const double r = e0 > 0 ? e / e0 : 0.0;
    d.push_back(Damage{d0.mse * r, d0.kl * r});
  }
  return d;
}
}  // namespace detail

// errors[i][k]: the squared weight error ||Q(W_i) - W_i||^2 of tensor i at
// measured.bits[i][k]. The returned table has the same widths; its damage is
// t_i * errors[i][k] with t_i = measured damage / error at `probe_bits` (per metric).
inline SensitivityTable second_order_sensitivity(const SensitivityTable& measured,
                                                 const std::vector<std::vector<double>>& errors,
                                                 int probe_bits) {
  ETK_CHECK(errors.size() == measured.tensors(), "argument 'errors' has " << errors.size()
                                                     << " rows, expected " << measured.tensors());
  SensitivityTable t = measured;
  for (std::size_t i = 0; i < measured.tensors(); ++i) {
    ETK_CHECK(errors[i].size() == measured.bits[i].size(),
              "argument 'errors': tensor " << i << " has " << errors[i].size() << " entries, expected "
                                           << measured.bits[i].size());
    const auto at = std::find(measured.bits[i].begin(), measured.bits[i].end(), probe_bits);
    ETK_CHECK(at != measured.bits[i].end(),
              "argument 'probe_bits': tensor " << i << " has no measured damage at " << probe_bits << " bits");
    detail::check_errors(errors[i], i);
    const std::size_t p = std::size_t(at - measured.bits[i].begin());
    t.damage[i] = detail::scaled_by_error(errors[i], errors[i][p], measured.damage[i][p]);
  }
  return t;
}

// A table measured at every width for some tensors and at `probe_bits` alone for the
// others (small tensors, whose width barely moves a budget, to save their evaluations):
// each of the latter gets every width of `widths`, estimated as second_order_sensitivity
// does from its probe; errors[i][k] is tensor i's weight error at widths[k] (rows of the
// fully measured tensors are not read). The fully measured rows are returned as they are.
inline SensitivityTable fill_from_probe(const SensitivityTable& measured, std::vector<int> widths,
                                        const std::vector<std::vector<double>>& errors, int probe_bits) {
  ETK_CHECK(errors.size() == measured.tensors(), "argument 'errors' has " << errors.size()
                                                     << " rows, expected " << measured.tensors());
  widths = detail::normalized_candidates(std::move(widths), 0);
  const auto at = std::find(widths.begin(), widths.end(), probe_bits);
  ETK_CHECK(at != widths.end(), "argument 'widths' lacks the probe width " << probe_bits);
  const std::size_t p = std::size_t(at - widths.begin());
  SensitivityTable t = measured;
  for (std::size_t i = 0; i < measured.tensors(); ++i) {
    if (measured.bits[i].size() != 1) continue;
    ETK_CHECK(measured.bits[i][0] == probe_bits, "argument 'measured': tensor " << i << " is measured at "
                                                     << measured.bits[i][0] << " bits alone, not at the probe's "
                                                     << probe_bits);
    ETK_CHECK(errors[i].size() == widths.size(), "argument 'errors': tensor " << i << " has " << errors[i].size()
                                                     << " entries, expected " << widths.size());
    detail::check_errors(errors[i], i);
    t.bits[i] = widths;
    t.damage[i] = detail::scaled_by_error(errors[i], errors[i][p], measured.damage[i][0]);
  }
  return t;
}

struct RefineOptions {
  std::size_t max_evaluations = 24;  // real evaluations after the start's
  int batch = 2;                     // moves evaluated per round (concurrently, on ctx's pool)
  Metric metric = Metric::kl;
};

struct RefineResult {
  BitConfig bits;
  Damage start, damage;            // measured: the start's, the result's
  std::size_t evaluations = 0;     // configurations evaluated (cache hits included)
  std::size_t accepted = 0;        // moves kept
};

namespace detail {
inline int option_index(const SensitivityTable& table, std::size_t i, int bits) {
  const auto& b = table.bits[i];
  const auto it = std::find(b.begin(), b.end(), bits);
  ETK_CHECK(it != b.end(), "argument 'start': tensor " << i << " at " << bits
                                                         << " bits, which is not in its candidate list");
  return int(it - b.begin());
}

// A raise of tensor i by one width with its payment; predicted = the additive change.
struct Move {
  BitConfig bits;
  double predicted = 0;
};

inline bool make_move(const std::vector<QuantTensor>& tensors, const SensitivityTable& table, BudgetKind kind,
                      Metric metric, double limit, const std::vector<int>& at, std::size_t raise, Move& out) {
  if (at[raise] == 0) return false;
  std::vector<int> k = at;
  --k[raise];
  auto cost_of = [&](std::size_t i, int j) { return tensor_cost(tensors[i], kind, table.bits[i][std::size_t(j)]); };
  auto dmg = [&](std::size_t i, int j) { return metric_value(table.damage[i][std::size_t(j)], metric); };
  double cost = 0;
  for (std::size_t i = 0; i < k.size(); ++i) cost += cost_of(i, k[i]);
  double predicted = dmg(raise, k[raise]) - dmg(raise, at[raise]);
  // Pay: lower, one width at a time, the tensor (not the raised one) whose next width adds
  // the least predicted damage per unit of cost saved.
  while (!within_budget(cost, limit)) {
    double best = std::numeric_limits<double>::infinity();
    std::ptrdiff_t who = -1;
    for (std::size_t i = 0; i < k.size(); ++i) {
      if (i == raise || k[i] + 1 >= int(table.bits[i].size())) continue;
      const double saved = cost_of(i, k[i]) - cost_of(i, k[i] + 1);
      if (saved <= 0) continue;
      const double ratio = (dmg(i, k[i] + 1) - dmg(i, k[i])) / saved;
      if (ratio < best) {
        best = ratio;
        who = std::ptrdiff_t(i);
      }
    }
    if (who < 0) return false;
    cost -= cost_of(std::size_t(who), k[std::size_t(who)]) - cost_of(std::size_t(who), k[std::size_t(who)] + 1);
    predicted += dmg(std::size_t(who), k[std::size_t(who)] + 1) - dmg(std::size_t(who), k[std::size_t(who)]);
    ++k[std::size_t(who)];
  }
  out.bits.resize(k.size());
  for (std::size_t i = 0; i < k.size(); ++i) out.bits[i] = table.bits[i][std::size_t(k[i])];
  out.predicted = predicted;
  return true;
}
}  // namespace detail

// The greedy that re-evaluates the real model (see the top of this file). `start` must
// meet the budget and use only widths of `table`. Every evaluation goes through `cache`.
inline RefineResult refine_on_model(SensitivityCache& cache, const std::vector<QuantTensor>& tensors,
                                    const SensitivityTable& table, const Budget& budget, const BitConfig& start,
                                    const RefineOptions& opt = {}, const Context& ctx = {}) {
  detail::check_tensors(tensors, table, budget.kind);
  ETK_CHECK(opt.batch >= 1, "argument 'opt': batch must be >= 1, got " << opt.batch);
  ETK_CHECK(start.size() == tensors.size(), "argument 'start' has " << start.size() << " entries, expected "
                                                                      << tensors.size());
  const double limit = budget_limit(tensors, budget);
  std::vector<int> at(tensors.size());
  double cost = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    at[i] = detail::option_index(table, i, start[i]);
    cost += tensor_cost(tensors[i], budget.kind, start[i]);
  }
  ETK_CHECK(detail::within_budget(cost, limit),
            "argument 'start' costs " << cost << ", above the budget's " << limit);
  RefineResult r;
  r.bits = start;
  r.start = r.damage = cache.evaluate(start);
  r.evaluations = 1;
  std::set<BitConfig> tried{start};
  while (r.evaluations < opt.max_evaluations + 1) {
    std::vector<detail::Move> moves;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      detail::Move m;
      if (detail::make_move(tensors, table, budget.kind, opt.metric, limit, at, i, m) && !tried.count(m.bits))
        moves.push_back(std::move(m));
    }
    if (moves.empty()) break;
    std::stable_sort(moves.begin(), moves.end(),
                     [](const detail::Move& a, const detail::Move& b) { return a.predicted < b.predicted; });
    const std::size_t n = std::min({moves.size(), std::size_t(opt.batch), opt.max_evaluations + 1 - r.evaluations});
    std::vector<BitConfig> round;
    for (std::size_t j = 0; j < n; ++j) round.push_back(moves[j].bits);
    cache.prefetch(round, ctx);
    std::ptrdiff_t best = -1;
    double best_value = metric_value(r.damage, opt.metric);
    for (std::size_t j = 0; j < n; ++j) {
      tried.insert(round[j]);
      ++r.evaluations;
      const Damage d = cache.evaluate(round[j]);
      if (metric_value(d, opt.metric) < best_value) {
        best_value = metric_value(d, opt.metric);
        best = std::ptrdiff_t(j);
      }
    }
    if (best < 0) continue;
    r.bits = round[std::size_t(best)];
    r.damage = cache.evaluate(r.bits);
    ++r.accepted;
    for (std::size_t i = 0; i < tensors.size(); ++i) at[i] = detail::option_index(table, i, r.bits[i]);
  }
  return r;
}

// A held-out score: lower is better, compared by `primary` (e.g. character errors), then
// by `secondary` (e.g. KL vs float).
struct ValidationScore {
  double primary = 0;
  double secondary = 0;
};

inline bool better(const ValidationScore& a, const ValidationScore& b) {
  return a.primary < b.primary || (a.primary == b.primary && a.secondary < b.secondary);
}

struct ValidationChoice {
  std::size_t best = 0;                 // index of the returned candidate
  std::vector<ValidationScore> scores;  // one per candidate
};

namespace detail {
// f(i) for i < n on ctx's pool; a pool's workers must not throw, so errors are kept and
// the first (by index) re-thrown once all tasks are done.
template <typename F>
void run_all(std::size_t n, F&& f, const Context& ctx) {
#if defined(ETK_EXCEPTIONS)
  std::vector<std::exception_ptr> err(n);
  parallel_for(ctx, std::ptrdiff_t(n), [&](std::ptrdiff_t i, int) {
    try {
      f(std::size_t(i));
    } catch (...) {
      err[std::size_t(i)] = std::current_exception();
    }
  });
  for (const auto& e : err)
    if (e) std::rethrow_exception(e);
#else
  parallel_for(ctx, std::ptrdiff_t(n), [&](std::ptrdiff_t i, int) { f(std::size_t(i)); });
#endif
}

inline void check_score(const ValidationScore& s, std::size_t candidate) {
  ETK_CHECK(std::isfinite(s.primary) && std::isfinite(s.secondary),
            "the validation score of candidate " << candidate << " is not finite");
}
}  // namespace detail

// score(i) of every candidate on ctx's pool (score must then be safe to call
// concurrently); the best, ties to the lowest index. A non-finite score is refused.
template <typename Score>
ValidationChoice choose_on_validation(std::size_t candidates, Score&& score, const Context& ctx = {}) {
  ETK_CHECK(candidates > 0, "argument 'candidates' must be > 0");
  ValidationChoice c;
  c.scores.resize(candidates);
  detail::run_all(candidates, [&](std::size_t i) { c.scores[i] = score(i); }, ctx);
  for (std::size_t i = 0; i < candidates; ++i) {
    detail::check_score(c.scores[i], i);
    if (better(c.scores[i], c.scores[c.best])) c.best = i;
  }
  return c;
}

struct PartedValidationChoice : ValidationChoice {
  std::vector<std::size_t> parts_scored;  // per candidate: parts scored before it was stopped
  std::size_t evaluations = 0;            // score_part calls in all
};

// The same choice as choose_on_validation when a candidate's score is the sum of its
// scores on `parts` disjoint parts of the validation data, each part's primary >= 0 (e.g.
// character errors per group of lines): score_part(i, k) is candidate i's score on part
// k. The candidate first in `order` (the one expected best; a permutation of all
// candidates, or empty for 0, 1, ...) is scored completely; then the others part by part,
// all parts k of a round concurrently on ctx's pool, and a candidate whose partial
// primary already exceeds that of the best complete candidate is stopped: the parts left
// can only add to it, so it cannot be the best. Stopped candidates keep their partial
// sums in `scores` (parts_scored tells). The answer is the same for every order and
// pool; only the number of evaluations depends on the order.
template <typename ScorePart>
PartedValidationChoice choose_on_validation_in_parts(std::size_t candidates, std::size_t parts,
                                                     ScorePart&& score_part, std::vector<std::size_t> order = {},
                                                     const Context& ctx = {}) {
  ETK_CHECK(candidates > 0, "argument 'candidates' must be > 0");
  ETK_CHECK(parts > 0, "argument 'parts' must be > 0");
  if (order.empty())
    for (std::size_t i = 0; i < candidates; ++i) order.push_back(i);
  {
    std::vector<std::size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    bool permutation = sorted.size() == candidates;
    for (std::size_t i = 0; permutation && i < candidates; ++i) permutation = sorted[i] == i;
    ETK_CHECK(permutation, "argument 'order' must list every candidate 0.." << candidates - 1 << " once");
  }
  PartedValidationChoice c;
  c.scores.assign(candidates, ValidationScore{});
  c.parts_scored.assign(candidates, 0);
  // Scores part k of the listed candidates concurrently and adds them up.
  auto score_round = [&](const std::vector<std::pair<std::size_t, std::size_t>>& tasks) {
    std::vector<ValidationScore> got(tasks.size());
    detail::run_all(tasks.size(), [&](std::size_t t) { got[t] = score_part(tasks[t].first, tasks[t].second); }, ctx);
    c.evaluations += tasks.size();
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const std::size_t i = tasks[t].first;
      detail::check_score(got[t], i);
      ETK_CHECK(got[t].primary >= 0, "the validation score of candidate " << i << " on part " << tasks[t].second
                                                                          << " has a negative primary "
                                                                          << got[t].primary);
      c.scores[i].primary += got[t].primary;
      c.scores[i].secondary += got[t].secondary;
      ++c.parts_scored[i];
    }
  };
  std::vector<std::pair<std::size_t, std::size_t>> first;
  for (std::size_t k = 0; k < parts; ++k) first.push_back({order[0], k});
  score_round(first);
  double bound = c.scores[order[0]].primary;  // the least primary of a complete candidate
  std::vector<std::size_t> alive(order.begin() + 1, order.end());
  for (std::size_t k = 0; k < parts && !alive.empty(); ++k) {
    std::vector<std::pair<std::size_t, std::size_t>> round;
    for (std::size_t i : alive) round.push_back({i, k});
    score_round(round);
    std::vector<std::size_t> next;
    for (std::size_t i : alive)
      if (c.scores[i].primary <= bound) next.push_back(i);
    if (k + 1 == parts)
      for (std::size_t i : next) bound = std::min(bound, c.scores[i].primary);
    alive = std::move(next);
  }
  // The best complete candidate, ties to the lowest index.
  bool found = false;
  for (std::size_t i = 0; i < candidates; ++i) {
    if (c.parts_scored[i] != parts) continue;
    if (!found || better(c.scores[i], c.scores[c.best])) c.best = i;
    found = true;
  }
  return c;
}

}  // namespace search
ETK_END_NAMESPACE
