// etk/search/reference/allocation.hpp: the plain twin of exact_allocate.
//
// Enumerates every configuration (the product of the items' option counts, refused above
// `max_configurations`) and keeps the least summed damage among those whose summed cost
// fits the budget; ties go to the configuration met first (odometer order, item 0
// fastest). Obviously correct and exponential: for tests on small problems.
#pragma once

#include <cstdint>
#include <vector>

#include "etk/search/allocation.hpp"

ETK_BEGIN_NAMESPACE
namespace search {
namespace reference {

inline AllocationResult brute_force_allocate(const OptionTable& options, double budget,
                                             std::int64_t max_configurations = 1 << 22) {
  detail::check_options(options, budget);
  double total = 1;
  for (const auto& list : options) total *= double(list.size());
  ETK_CHECK(total <= double(max_configurations),
            "argument 'options' spans " << total << " configurations, more than "
                                        << max_configurations << " to enumerate");
  const std::size_t n = options.size();
  std::vector<int> choice(n, 0);
  AllocationResult r;
  bool found = false;
  for (;;) {
    AllocationPoint p = detail::point_of(options, choice);
    if (detail::within_budget(p.cost, budget) && (!found || p.damage < r.damage)) {
      found = true;
      r.choice = p.choice;
      r.cost = p.cost;
      r.damage = p.damage;
    }
    std::size_t i = 0;
    while (i < n && ++choice[i] == int(options[i].size())) choice[i++] = 0;
    if (i == n) break;
  }
  if (!found) return detail::unreachable(options, budget);
  r.budget_met = true;
  return r;
}

}  // namespace reference
}  // namespace search
ETK_END_NAMESPACE
