// etk/search/mixed_precision.hpp: a bit-width per tensor under a size or compute budget.
//
// The engine supplies the model through one callback, `Evaluator`: given a bit-width per
// quantizable tensor (kFloat = left in float), run the calibration data and return the
// damage to the output (MSE and KL divergence vs the float model). etk never touches the
// weights itself, so any engine and any quantizer fit. Pieces:
//  * SensitivityCache: the callback behind a cache keyed by configuration (a search asks
//    for each configuration once, however many budgets are tried), with a check of every
//    answer (a NaN or a throw becomes a clear etk::invalid_argument naming the
//    configuration). make_evaluator() wraps apply/forward/restore hooks so that the model
//    is restored to float on every path, errors included.
//  * measure_sensitivity: each tensor alone at each candidate width (the rest float),
//    the evaluations as tasks on the caller's etk::Context pool (etk creates no thread).
//    proxy_sensitivity: the cheap stand-in without forward passes, importance-weighted
//    quantization error of the weights themselves (HAWQ-style when the weight is a
//    Hessian trace per element).
//  * greedy_mixed_precision (MPTQ-ViT Greedy MP, with the whole path as a Pareto curve)
//    and exact_mixed_precision (the optimum of the same additive objective by dynamic
//    programming), under an average-bits, model-bytes or bit-operations budget; both go
//    through etk/search/allocation.hpp.
//  * verify: the real forward pass of the chosen configuration, since the additive
//    objective is only a prediction.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/context.hpp"
#include "etk/search/allocation.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

// A bit-width of 0 in a configuration means "not quantized" (float).
constexpr int kFloat = 0;
constexpr int kMinBits = 1;
constexpr int kMaxBits = 16;

using BitConfig = std::vector<int>;

// The damage of a configuration: output error vs the float model on calibration data.
struct Damage {
  double mse = 0;  // mean squared error of the outputs
  double kl = 0;   // mean KL(float || quantized) of the output distributions
};

enum class Metric { mse, kl };

inline double metric_value(const Damage& d, Metric m) { return m == Metric::mse ? d.mse : d.kl; }

// The engine's forward pass: damage of the model with tensor i at config[i] bits.
using Evaluator = std::function<Damage(const BitConfig&)>;

// A quantizable tensor as the budget sees it.
struct QuantTensor {
  std::string name;
  std::int64_t elements = 0;        // weight count: average bits and model bytes
  std::int64_t macs = 0;            // multiply-accumulates per forward: bit-operations
  int partner_bits = 8;             // the other operand's width in those MACs
  std::int64_t overhead_bytes = 0;  // scales / zero points stored beside the codes
};

enum class BudgetKind {
  average_bits,    // sum(elements * bits) / sum(elements) <= value
  model_bytes,     // sum(ceil(elements * bits / 8) + overhead_bytes) <= value
  bit_operations,  // sum(macs * bits * partner_bits) <= value
};

struct Budget {
  BudgetKind kind = BudgetKind::average_bits;
  double value = 0;
};

// ----------------------------------------------------------------------------------------
// Evaluations

// Hooks of an engine whose weights are quantized in place. make_evaluator() calls
// apply(config), then forward(), and always restore() afterwards, also when forward or
// apply throws, so a failed evaluation leaves the model as it was.
struct ModelHooks {
  std::function<void(const BitConfig&)> apply;
  std::function<Damage()> forward;
  std::function<void()> restore;
};

inline Evaluator make_evaluator(ModelHooks hooks) {
  ETK_CHECK(hooks.apply && hooks.forward && hooks.restore,
            "argument 'hooks' needs apply, forward and restore");
  return [h = std::move(hooks)](const BitConfig& config) {
    struct Restore {
      const std::function<void()>& f;
      ~Restore() { f(); }
    } guard{h.restore};
    h.apply(config);
    return h.forward();
  };
}

inline std::string describe_config(const BitConfig& config) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < config.size(); ++i) s << (i ? "," : "") << config[i];
  s << "]";
  return s.str();
}

// The evaluator behind a cache. Every configuration is evaluated at most once; an answer
// that is not finite, or a negative MSE, is refused with an error naming the
// configuration (and is not cached); an exception from the evaluator is re-thrown as
// etk::invalid_argument with the configuration added to its message.
class SensitivityCache {
 public:
  SensitivityCache(Evaluator evaluate, std::size_t tensors)
      : evaluate_(std::move(evaluate)), tensors_(tensors) {
    ETK_CHECK(bool(evaluate_), "argument 'evaluate' is an empty function");
    ETK_CHECK(tensors_ > 0, "argument 'tensors' must be > 0");
  }

  std::size_t tensors() const { return tensors_; }
  std::size_t evaluations() const { return evaluations_; }  // calls of the evaluator
  std::size_t hits() const { return hits_; }                // answers from the cache

  Damage evaluate(const BitConfig& config) {
    check_config(config);
    auto it = cache_.find(config);
    if (it != cache_.end()) {
      ++hits_;
      return it->second;
    }
    const Damage d = call(config);
    cache_.emplace(config, d);
    return d;
  }

  // Evaluates the configurations the cache lacks, one task each on ctx's pool (the
  // evaluator must then be safe to call concurrently), then caches them all. Every
  // configuration is evaluated whatever the others do; the error of the first failing one
  // (in the order given) is reported after all have finished, and the answers that did
  // succeed stay cached, so the outcome is the same for every thread count.
  void prefetch(const std::vector<BitConfig>& configs, const Context& ctx = {}) {
    evaluate_missing(configs, ctx);
  }

  // The damage of every configuration, in order: prefetch(configs, ctx), then each answer
  // from the cache. Counted like evaluate() one by one: each configuration this call did
  // not evaluate is a hit.
  std::vector<Damage> evaluate_all(const std::vector<BitConfig>& configs, const Context& ctx = {}) {
    const std::size_t evaluated = evaluate_missing(configs, ctx);
    hits_ += configs.size() - evaluated;
    std::vector<Damage> d;
    d.reserve(configs.size());
    for (const auto& c : configs) d.push_back(cache_.at(c));
    return d;
  }

 private:
  // prefetch; returns how many configurations it evaluated.
  std::size_t evaluate_missing(const std::vector<BitConfig>& configs, const Context& ctx) {
    std::vector<BitConfig> todo;
    for (const auto& c : configs) {
      check_config(c);
      if (cache_.find(c) == cache_.end() && std::find(todo.begin(), todo.end(), c) == todo.end())
        todo.push_back(c);
    }
    std::vector<Damage> out(todo.size());
#if defined(ETK_EXCEPTIONS)
    std::vector<std::exception_ptr> err(todo.size());
    parallel_for(ctx, static_cast<std::ptrdiff_t>(todo.size()), [&](std::ptrdiff_t i, int) {
      try {
        out[i] = call(todo[i]);
      } catch (...) {
        err[i] = std::current_exception();
      }
    });
    for (std::size_t i = 0; i < todo.size(); ++i)
      if (!err[i]) cache_.emplace(todo[i], out[i]);
    for (std::size_t i = 0; i < todo.size(); ++i)
      if (err[i]) std::rethrow_exception(err[i]);
#else
    parallel_for(ctx, static_cast<std::ptrdiff_t>(todo.size()),
                 [&](std::ptrdiff_t i, int) { out[i] = call(todo[i]); });
    for (std::size_t i = 0; i < todo.size(); ++i) cache_.emplace(todo[i], out[i]);
#endif
    return todo.size();
  }

  void check_config(const BitConfig& config) const {
    ETK_CHECK(config.size() == tensors_, "argument 'config' has " << config.size()
                                                                  << " entries, expected "
                                                                  << tensors_);
    for (std::size_t i = 0; i < config.size(); ++i)
      ETK_CHECK(config[i] == kFloat || (config[i] >= kMinBits && config[i] <= kMaxBits),
                "argument 'config': tensor " << i << " has bit-width " << config[i]
                                             << ", expected 0 (float) or " << kMinBits
                                             << ".." << kMaxBits);
  }

  // One evaluator call, checked; thread-safe as far as the evaluator is.
  Damage call(const BitConfig& config) {
    ++evaluations_;
    Damage d{};
#if defined(ETK_EXCEPTIONS)
    try {
      d = evaluate_(config);
    } catch (const ::etk::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      ETK_THROW("the evaluator failed on configuration " << describe_config(config) << ": "
                                                         << e.what());
    } catch (...) {
      ETK_THROW("the evaluator threw a non-standard exception on configuration "
                << describe_config(config));
    }
#else
    d = evaluate_(config);
#endif
    ETK_CHECK(std::isfinite(d.mse) && std::isfinite(d.kl) && d.mse >= 0,
              "the evaluator returned mse " << d.mse << ", kl " << d.kl
                                            << " on configuration " << describe_config(config)
                                            << "; expected finite values and mse >= 0");
    return d;
  }

  Evaluator evaluate_;
  std::size_t tensors_;
  std::map<BitConfig, Damage> cache_;
  std::atomic<std::size_t> evaluations_{0};
  std::size_t hits_ = 0;
};

// ----------------------------------------------------------------------------------------
// Sensitivity

// Per tensor: its candidate widths (highest first) and the damage of each.
struct SensitivityTable {
  std::vector<std::vector<int>> bits;
  std::vector<std::vector<Damage>> damage;
  std::size_t tensors() const { return bits.size(); }
};

namespace detail {
// Sorted highest first, duplicates removed, each within [kMinBits, kMaxBits].
inline std::vector<int> normalized_candidates(std::vector<int> c, std::size_t tensor) {
  ETK_CHECK(!c.empty(), "argument 'candidates': tensor " << tensor
                                                         << " has an empty candidate list");
  for (int b : c)
    ETK_CHECK(b >= kMinBits && b <= kMaxBits, "argument 'candidates': tensor "
                                                  << tensor << " lists bit-width " << b
                                                  << ", expected " << kMinBits << ".."
                                                  << kMaxBits);
  std::sort(c.begin(), c.end(), std::greater<int>());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}
}  // namespace detail

// Each tensor alone at each of its candidate widths, the others float: candidates[i] is
// tensor i's list. Costs one evaluation per (tensor, width) the cache has not seen, run as
// tasks on ctx's pool (SensitivityCache::prefetch); the table is the same for any pool.
inline SensitivityTable measure_sensitivity(SensitivityCache& cache,
                                            const std::vector<std::vector<int>>& candidates,
                                            const Context& ctx = {}) {
  ETK_CHECK(candidates.size() == cache.tensors(),
            "argument 'candidates' has " << candidates.size() << " lists, expected one per tensor ("
                                         << cache.tensors() << ")");
  SensitivityTable t;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    t.bits.push_back(detail::normalized_candidates(candidates[i], i));
  std::vector<BitConfig> all;
  for (std::size_t i = 0; i < t.bits.size(); ++i)
    for (int b : t.bits[i]) {
      all.emplace_back(cache.tensors(), kFloat);
      all.back()[i] = b;
    }
  const std::vector<Damage> d = cache.evaluate_all(all, ctx);
  std::size_t next = 0;
  for (std::size_t i = 0; i < t.bits.size(); ++i) {
    t.damage.emplace_back(d.begin() + std::ptrdiff_t(next), d.begin() + std::ptrdiff_t(next + t.bits[i].size()));
    next += t.bits[i].size();
  }
  return t;
}

// The same candidate list for every tensor.
inline SensitivityTable measure_sensitivity(SensitivityCache& cache, const std::vector<int>& candidates,
                                            const Context& ctx = {}) {
  return measure_sensitivity(cache, std::vector<std::vector<int>>(cache.tensors(), candidates), ctx);
}

// A tensor's weights for the proxy, and how much an error in them matters (e.g. 1, or the
// Hessian trace per element of HAWQ, or the mean squared input of the layer).
struct ProxyTensor {
  const float* data = nullptr;
  std::size_t size = 0;
  double importance = 1.0;
};

// quantize(in, out, n, bits): out = the engine's quantize-then-dequantize of in.
using Quantizer = std::function<void(const float*, float*, std::size_t, int)>;

// The cheap proxy: damage(i, b) = importance_i * sum_k (Q_b(w_k) - w_k)^2, stored as both
// mse and kl of the table (the proxy has one number), so either metric selects it.
inline SensitivityTable proxy_sensitivity(const std::vector<ProxyTensor>& tensors,
                                          const std::vector<std::vector<int>>& candidates,
                                          const Quantizer& quantize) {
  ETK_CHECK(!tensors.empty(), "argument 'tensors' is empty");
  ETK_CHECK(candidates.size() == tensors.size(),
            "argument 'candidates' has " << candidates.size() << " lists, expected "
                                         << tensors.size());
  ETK_CHECK(bool(quantize), "argument 'quantize' is an empty function");
  SensitivityTable t;
  std::vector<float> q;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const ProxyTensor& w = tensors[i];
    ETK_CHECK(w.data != nullptr && w.size > 0, "argument 'tensors': tensor " << i << " is empty");
    ETK_CHECK(std::isfinite(w.importance) && w.importance >= 0,
              "argument 'tensors': tensor " << i << " has importance " << w.importance
                                            << ", expected finite and >= 0");
    t.bits.push_back(detail::normalized_candidates(candidates[i], i));
    q.resize(w.size);
    std::vector<Damage> row;
    for (int b : t.bits[i]) {
      quantize(w.data, q.data(), w.size, b);
      double e = 0;
      for (std::size_t k = 0; k < w.size; ++k) {
        const double d = double(q[k]) - double(w.data[k]);
        e += d * d;
      }
      ETK_CHECK(std::isfinite(e), "argument 'quantize' produced a non-finite value for tensor "
                                      << i << " at " << b << " bits");
      row.push_back(Damage{w.importance * e, w.importance * e});
    }
    t.damage.push_back(std::move(row));
  }
  return t;
}

// ----------------------------------------------------------------------------------------
// Search

// Cost of one tensor at `bits` in the unit of the budget.
inline double tensor_cost(const QuantTensor& t, BudgetKind kind, int bits) {
  switch (kind) {
    case BudgetKind::average_bits:
      return double(t.elements) * bits;
    case BudgetKind::model_bytes:
      return double((t.elements * bits + 7) / 8 + t.overhead_bytes);
    case BudgetKind::bit_operations:
      return double(t.macs) * bits * t.partner_bits;
  }
  return 0;
}

// The budget as a limit on the summed tensor_cost.
inline double budget_limit(const std::vector<QuantTensor>& tensors, const Budget& budget) {
  ETK_CHECK(std::isfinite(budget.value) && budget.value >= 0,
            "argument 'budget.value' must be finite and >= 0, got " << budget.value);
  if (budget.kind != BudgetKind::average_bits) return budget.value;
  double n = 0;
  for (const auto& t : tensors) n += double(t.elements);
  return budget.value * n;
}

inline double average_bits(const std::vector<QuantTensor>& tensors, const BitConfig& bits) {
  double n = 0, s = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    n += double(tensors[i].elements);
    s += double(tensors[i].elements) * bits[i];
  }
  return n > 0 ? s / n : 0;
}

// One point of a search: a configuration, its cost in the budget's unit, its average
// bits and its predicted (summed single-tensor) damage.
struct MixedPrecisionPoint {
  BitConfig bits;
  double cost = 0;
  double average_bits = 0;
  double predicted = 0;
};

struct MixedPrecisionResult {
  MixedPrecisionPoint choice;
  bool budget_met = false;
  std::string note;    // why the budget was not met
  bool exact = true;   // exact search: the discretisation lost nothing
  std::vector<MixedPrecisionPoint> pareto;  // greedy: the whole path, highest bits first
};

namespace detail {
inline void check_tensors(const std::vector<QuantTensor>& tensors, const SensitivityTable& table,
                          BudgetKind kind) {
  ETK_CHECK(!tensors.empty(), "argument 'tensors' is empty");
  ETK_CHECK(table.tensors() == tensors.size() && table.damage.size() == tensors.size(),
            "argument 'table' covers " << table.tensors() << " tensors, expected "
                                       << tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const QuantTensor& t = tensors[i];
    ETK_CHECK(t.elements > 0, "argument 'tensors': '" << t.name << "' has " << t.elements
                                                      << " elements, expected > 0");
    ETK_CHECK(t.overhead_bytes >= 0, "argument 'tensors': '" << t.name
                                                             << "' has negative overhead_bytes");
    if (kind == BudgetKind::bit_operations)
      ETK_CHECK(t.macs >= 0 && t.partner_bits > 0,
                "argument 'tensors': '" << t.name << "' needs macs >= 0 and partner_bits > 0");
    ETK_CHECK(!table.bits[i].empty() && table.bits[i].size() == table.damage[i].size(),
              "argument 'table': tensor " << i << " has an empty or ragged candidate list");
  }
}

inline OptionTable options_of(const std::vector<QuantTensor>& tensors,
                              const SensitivityTable& table, BudgetKind kind, Metric metric) {
  OptionTable o(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i)
    for (std::size_t k = 0; k < table.bits[i].size(); ++k)
      o[i].push_back(Option{tensor_cost(tensors[i], kind, table.bits[i][k]),
                            metric_value(table.damage[i][k], metric)});
  return o;
}

inline MixedPrecisionPoint to_point(const std::vector<QuantTensor>& tensors,
                                    const SensitivityTable& table, const std::vector<int>& choice,
                                    double cost, double damage) {
  MixedPrecisionPoint p;
  for (std::size_t i = 0; i < choice.size(); ++i) p.bits.push_back(table.bits[i][choice[i]]);
  p.cost = cost;
  p.predicted = damage;
  p.average_bits = average_bits(tensors, p.bits);
  return p;
}

inline MixedPrecisionResult to_result(const std::vector<QuantTensor>& tensors,
                                      const SensitivityTable& table, const AllocationResult& a) {
  MixedPrecisionResult r;
  r.choice = to_point(tensors, table, a.choice, a.cost, a.damage);
  r.budget_met = a.budget_met;
  r.note = a.note;
  r.exact = a.exact;
  for (const auto& p : a.path) r.pareto.push_back(to_point(tensors, table, p.choice, p.cost, p.damage));
  return r;
}
}  // namespace detail

// Greedy MP: every tensor at its highest candidate, then repeatedly lower the tensor
// whose next candidate adds the least damage per unit of budget saved. `pareto` holds the
// path down to all-lowest; `choice` is its least-damage point within the budget.
inline MixedPrecisionResult greedy_mixed_precision(const std::vector<QuantTensor>& tensors,
                                                   const SensitivityTable& table,
                                                   const Budget& budget,
                                                   Metric metric = Metric::kl) {
  detail::check_tensors(tensors, table, budget.kind);
  const double limit = budget_limit(tensors, budget);
  return detail::to_result(tensors, table,
                           greedy_allocate(detail::options_of(tensors, table, budget.kind, metric), limit));
}

// The optimum of the same additive objective (see exact_allocate for the discretisation).
inline MixedPrecisionResult exact_mixed_precision(const std::vector<QuantTensor>& tensors,
                                                  const SensitivityTable& table,
                                                  const Budget& budget, Metric metric = Metric::kl,
                                                  const ExactOptions& opt = {}) {
  detail::check_tensors(tensors, table, budget.kind);
  const double limit = budget_limit(tensors, budget);
  return detail::to_result(
      tensors, table, exact_allocate(detail::options_of(tensors, table, budget.kind, metric), limit, opt));
}

// The final check: the real forward pass of a chosen configuration (cached like the rest).
inline Damage verify(SensitivityCache& cache, const MixedPrecisionResult& result) {
  return cache.evaluate(result.choice.bits);
}

}  // namespace search
ETK_END_NAMESPACE
