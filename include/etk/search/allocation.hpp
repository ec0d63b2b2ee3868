// etk/search/allocation.hpp: choose one option per item under an additive budget.
//
// Both searches of this module reduce to the same problem: items (weight tensors, or
// activation sites), each with a list of options (bit-widths, compression settings) that
// have a cost (bits, bytes, bit-operations) and a damage (output error when only that
// item is changed). Pick one option per item so that the summed cost fits a budget and
// the summed damage is least. Two solvers:
//  * greedy_allocate: MPTQ-ViT's Greedy MP. Start every item at its first (most
//    expensive) option and repeatedly move the item whose next step costs the least
//    damage per unit of cost saved; the whole path down to the cheapest configuration is
//    recorded (a Pareto curve of cost vs predicted damage).
//  * exact_allocate: the optimum of the same additive objective by dynamic programming
//    (a multiple-choice knapsack over items on a discretised budget). When every cost is
//    an integer (bits, bytes, bit-operations are) and the budget span fits `max_cells`,
//    the discretisation is exact (cells of the gcd of the costs); otherwise costs are
//    rounded UP to cells, so the answer is always feasible and optimal for the rounded
//    problem (`exact` says which).
// The plain twin (enumeration of every configuration) is reference/allocation.hpp.
// A budget below the cheapest configuration is not an error: the result says so
// (`budget_met == false`, `note`) and holds the closest configuration, the cheapest one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

// One choice for one item.
struct Option {
  double cost = 0;    // >= 0, finite; non-increasing along an item's option list
  double damage = 0;  // finite; smaller is better
};

// options[i] lists item i's options, most expensive first.
using OptionTable = std::vector<std::vector<Option>>;

// One configuration: choice[i] indexes options[i].
struct AllocationPoint {
  std::vector<int> choice;
  double cost = 0;
  double damage = 0;
};

struct AllocationResult {
  std::vector<int> choice;  // the configuration returned
  double cost = 0;          // its summed cost
  double damage = 0;        // its summed (predicted) damage
  bool budget_met = false;  // false: the budget is below the cheapest configuration
  std::string note;         // why budget_met is false, else empty
  bool exact = true;        // exact_allocate only: the discretisation lost nothing
  std::vector<AllocationPoint> path;  // greedy_allocate only: every step, start to end
};

struct ExactOptions {
  // Largest number of budget cells of the dynamic programme. Memory is about
  // 2 * items * max_cells bytes (the back-pointers), time items * options * max_cells.
  std::int64_t max_cells = std::int64_t(1) << 18;
};

namespace detail {

// Costs are compared with this relative slack so that a budget computed in floating
// point (e.g. 4.0 * element count) is met by the configuration that meets it exactly.
inline bool within_budget(double cost, double budget) {
  return cost <= budget + 1e-9 * std::max(1.0, std::fabs(budget));
}

inline void check_options(const OptionTable& options, double budget) {
  ETK_CHECK(!options.empty(), "argument 'options' is empty: nothing to allocate");
  ETK_CHECK(std::isfinite(budget), "argument 'budget' must be finite, got " << budget);
  for (std::size_t i = 0; i < options.size(); ++i) {
    const auto& list = options[i];
    ETK_CHECK(!list.empty(), "argument 'options': item " << i << " has an empty candidate list");
    ETK_CHECK(list.size() <= 65535, "argument 'options': item " << i << " has " << list.size()
                                                                << " options, at most 65535");
    for (std::size_t j = 0; j < list.size(); ++j) {
      ETK_CHECK(std::isfinite(list[j].cost) && list[j].cost >= 0,
                "argument 'options': item " << i << " option " << j
                                            << " has cost " << list[j].cost
                                            << ", expected finite and >= 0");
      ETK_CHECK(std::isfinite(list[j].damage), "argument 'options': item "
                                                   << i << " option " << j << " has damage "
                                                   << list[j].damage << ", expected finite");
      ETK_CHECK(j == 0 || list[j].cost <= list[j - 1].cost,
                "argument 'options': item " << i << " costs must not increase along the list, "
                                            << "option " << j << " costs " << list[j].cost
                                            << " > option " << j - 1 << "'s "
                                            << list[j - 1].cost);
    }
  }
}

inline AllocationPoint point_of(const OptionTable& options, std::vector<int> choice) {
  AllocationPoint p;
  for (std::size_t i = 0; i < options.size(); ++i) {
    p.cost += options[i][choice[i]].cost;
    p.damage += options[i][choice[i]].damage;
  }
  p.choice = std::move(choice);
  return p;
}

// The cheapest configuration (each item's last option), returned with a note when the
// budget cannot be met.
inline AllocationResult unreachable(const OptionTable& options, double budget) {
  std::vector<int> last(options.size());
  for (std::size_t i = 0; i < options.size(); ++i) last[i] = int(options[i].size()) - 1;
  AllocationPoint p = point_of(options, std::move(last));
  AllocationResult r;
  r.choice = p.choice;
  r.cost = p.cost;
  r.damage = p.damage;
  r.budget_met = false;
  std::ostringstream s;
  s << "budget " << budget << " is below the cheapest configuration (cost " << p.cost
    << "); returning the cheapest configuration";
  r.note = s.str();
  return r;
}

// True when every value is an integer (within 1e-9), so exact cells exist.
inline bool all_integral(const std::vector<double>& v) {
  for (double x : v)
    if (std::fabs(x - std::round(x)) > 1e-9 || x > 9.0e15) return false;
  return true;
}

}  // namespace detail

// MPTQ-ViT Greedy MP on a generic option table. Every item starts at option 0; each step
// moves the item whose next option has the smallest (damage increase) / (cost saved),
// until every item is at its last option. The returned configuration is the point of
// least damage on that path whose cost fits the budget (the first such point unless a
// later step lowered the damage).
inline AllocationResult greedy_allocate(const OptionTable& options, double budget) {
  detail::check_options(options, budget);
  const std::size_t n = options.size();
  std::vector<int> choice(n, 0);
  AllocationResult r;
  r.path.push_back(detail::point_of(options, choice));
  for (;;) {
    double best_ratio = std::numeric_limits<double>::infinity();
    std::ptrdiff_t best = -1;
    for (std::size_t i = 0; i < n; ++i) {
      const int j = choice[i];
      if (j + 1 >= int(options[i].size())) continue;
      const double saved = options[i][j].cost - options[i][j + 1].cost;
      const double added = options[i][j + 1].damage - options[i][j].damage;
      // A step that saves nothing is free when it does not hurt, last otherwise.
      const double ratio = saved > 0 ? added / saved
                           : added <= 0 ? -std::numeric_limits<double>::infinity()
                                        : std::numeric_limits<double>::max();
      if (best < 0 || ratio < best_ratio) {
        best_ratio = ratio;
        best = std::ptrdiff_t(i);
      }
    }
    if (best < 0) break;
    ++choice[best];
    r.path.push_back(detail::point_of(options, choice));
  }
  const AllocationPoint* pick = nullptr;
  for (const auto& p : r.path)
    if (detail::within_budget(p.cost, budget) && (pick == nullptr || p.damage < pick->damage))
      pick = &p;
  if (pick == nullptr) {
    AllocationResult u = detail::unreachable(options, budget);
    u.path = std::move(r.path);
    return u;
  }
  r.choice = pick->choice;
  r.cost = pick->cost;
  r.damage = pick->damage;
  r.budget_met = true;
  return r;
}

// The least summed damage over all configurations whose summed cost fits the budget, by
// dynamic programming over items. Each item's cost is split into its cheapest option's
// cost (always paid) and the extra above it; the extras are measured in cells of the
// slack (budget minus the cheapest configuration's cost).
inline AllocationResult exact_allocate(const OptionTable& options, double budget,
                                       const ExactOptions& opt = {}) {
  detail::check_options(options, budget);
  ETK_CHECK(opt.max_cells >= 1 && opt.max_cells <= (std::int64_t(1) << 28),
            "argument 'opt.max_cells' must be in [1, 2^28], got " << opt.max_cells);
  const std::size_t n = options.size();
  double base = 0;
  std::vector<double> extras;
  for (const auto& list : options) {
    base += list.back().cost;
    for (const auto& o : list) extras.push_back(o.cost - list.back().cost);
  }
  if (!detail::within_budget(base, budget)) return detail::unreachable(options, budget);
  const double slack = std::max(0.0, budget - base);

  // Cell size: the gcd of the integral extras when the slack then spans few enough
  // cells (exact), else slack / max_cells with extras rounded up (conservative).
  double unit = 0;
  bool exact = false;
  std::int64_t cells = 0;
  if (detail::all_integral(extras)) {
    std::int64_t g = 0;
    for (double e : extras) g = std::gcd(g, std::int64_t(std::llround(e)));
    if (g == 0) g = 1;
    const double c = std::floor((slack + 1e-9 * std::max(1.0, std::fabs(budget))) / double(g));
    if (c <= double(opt.max_cells)) {
      unit = double(g);
      cells = std::int64_t(c);
      exact = true;
    }
  }
  if (!exact) {
    cells = opt.max_cells;
    unit = slack / double(cells);
  }
  auto weight = [&](double extra) -> std::int64_t {
    if (extra <= 0) return 0;
    if (exact) return std::llround(extra / unit);
    if (unit <= 0) return cells + 1;  // zero slack: any extra is infeasible
    const double w = std::ceil(extra / unit - 1e-12);
    return w > double(cells) ? cells + 1 : std::int64_t(w);
  };

  // best[c]: least damage of the items so far using at most c cells; from[i][c]: the
  // option item i takes in that solution.
  const double inf = std::numeric_limits<double>::infinity();
  const std::size_t width = std::size_t(cells) + 1;
  std::vector<double> best(width, 0.0), next(width);
  std::vector<std::uint16_t> from(n * width);
  std::vector<std::int64_t> w;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& list = options[i];
    w.resize(list.size());
    for (std::size_t j = 0; j < list.size(); ++j) w[j] = weight(list[j].cost - list.back().cost);
    std::uint16_t* back = from.data() + i * width;
    for (std::size_t c = 0; c < width; ++c) {
      double v = inf;
      std::uint16_t arg = 0;
      for (std::size_t j = 0; j < list.size(); ++j) {
        if (w[j] > std::int64_t(c)) continue;
        const double d = best[c - std::size_t(w[j])] + list[j].damage;
        if (d < v) {
          v = d;
          arg = std::uint16_t(j);
        }
      }
      next[c] = v;
      back[c] = arg;
    }
    best.swap(next);
  }
  std::vector<int> choice(n);
  std::size_t c = width - 1;
  for (std::size_t i = n; i-- > 0;) {
    const int j = from[i * width + c];
    choice[i] = j;
    c -= std::size_t(weight(options[i][j].cost - options[i].back().cost));
  }
  AllocationPoint p = detail::point_of(options, std::move(choice));
  AllocationResult r;
  r.choice = std::move(p.choice);
  r.cost = p.cost;
  r.damage = p.damage;
  r.budget_met = true;
  r.exact = exact;
  return r;
}

}  // namespace search
ETK_END_NAMESPACE
