// Mixed-precision weights and activation compression on PP-OCRv4 (etk/search).
//
// Weights: every conv and linear (47 tensors) gets a width of {8,6,5,4,3,2} stored bits
// per weight and, per width, the scheme of the lower weight error among uniform per
// output channel (symmetric, the clip that minimises each channel's MSE, min-max
// included) and per-channel PWLQ with one bit less of code plus its region bit (its
// breakpoint from the expected MSE, refined by the actual error near it), both with
// per-channel bias correction (etk/search/weight_schemes.hpp; computed once per tensor
// and width, the "bank"). Sensitivity: each tensor alone at each width, KL vs float on 8
// calibration lines (cached, so the 4/5/6-bit budgets and every objective share one table);
// a tensor under 0.1% of the weights is measured at the probe width alone and its other
// widths estimated from it by the second-order model below (es::fill_from_probe).
// Candidates per average of 4, 4.25, 4.5, 5 and 6 stored bits (parameter-weighted): uniform min-max
// (the "weights uniform" rows), the bank at one width everywhere (uniform width, scheme
// per layer), the additive table's Greedy MP and exact DP, the DP of the second-order
// table (curvature per tensor from the 6-bit probe times the weight error, HAWQ-V2
// style), and the greedy that re-evaluates the real model
// (etk/search/validated_mixed_precision.hpp) started from the best of those on the
// calibration lines. Every candidate is scored on 32 validation lines
// (Study::validation_lines: neither scored nor calibration lines) by character errors,
// then KL, in 4 parts of 8 lines: a candidate stops once its errors exceed a complete
// candidate's (choose_on_validation_in_parts: the same choice as scoring every line). The
// "validated" row is the best (uniform min-max wins ties), so it is never worse than
// uniform on validation. stderr prints, per candidate, the predicted KL of both tables,
// the KL measured on the calibration lines, the validation figures and its schemes.
// Activations: the five LayerNorm outputs of the transformer (inputs of qkv, fc1 and the
// head) go through the codec (real byte buffers; the effect column is the measured bits
// per value). Candidates per site: keep all 120 channels or project to 96/72/48/24 (PCA
// or compression-aware against the consuming linear), times an average width of
// 8/6/4/3/2 in groups of 12 channels; the damage of each is measured alone and the greedy
// layer-wise allocation meets 2x, 3x and 4x fewer bytes than int8 activations.
// The weight search's evaluations quantize one tensor (or, for the final checks, a few):
// they resume from the float activations saved before the first changed layer
// (src/prefix_cache.hpp), in a working copy of the model where only that layer is
// re-packed, on 2 threads; the damage is bit for bit that of a full forward pass. The
// greedy on the model's moves resume likewise from the activations of its start point.
// The search times go to stderr ("mixed precision: ..."): wall time, CPU time of the
// threads doing the search, and the process CPU time (which includes rows evaluated
// concurrently on other threads).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <string>
#include <vector>

#include <etk/core/context.hpp>
#include <etk/quant/observers.hpp>
#include <etk/quant/piecewise_linear.hpp>
#include <etk/quant/uniform.hpp>
#include <etk/search/activation_compression.hpp>
#include <etk/search/mixed_precision.hpp>
#include <etk/search/validated_mixed_precision.hpp>
#include <etk/search/weight_schemes.hpp>

#include "ctc.hpp"
#include "lazy.hpp"
#include "prefix_cache.hpp"
#include "render.hpp"
#include "study.hpp"

namespace {

namespace es = etk::search;

// The searches' calibration: this many held-out lines (Study::calibration_lines).
constexpr int kCalibCount = 8;
std::vector<int> calib_lines(ocr::Study& study) { return study.calibration_lines(ocr::Set::Short, kCalibCount); }
const std::vector<int> kWidths = {8, 6, 5, 4, 3, 2};
// The candidates are scored on this many validation lines (Study::validation_lines),
// disjoint from the calibration lines and from the scored lines.
constexpr int kValidCount = 32;
// The second-order objective's probe width, and the real-model greedy's evaluations per budget.
constexpr int kProbeBits = 6;
constexpr std::size_t kRefineEvaluations = 24;
// Tensors under this share of all weights (9 of 47 here, 0.26% of the weights) get their
// sensitivity measured at the probe width only: at any width they barely move the budget.
constexpr double kSmallShare = 0.001;
const std::vector<double> kBudgets = {4, 4.25, 4.5, 5, 6};
// The budgets that also get the greedy / DP / uniform-width rows (the others: "validated" only).
const std::vector<double> kFullBudgets = {4, 5, 6};

// "4", "4.25", "4.5": a budget as the row settings and stderr print it.
std::string budget_name(double avg) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", avg);
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void quantize_weights(etk::MatrixView<float> w, int bits) {
  const auto x = etk::matrix_view(static_cast<const float*>(w.data()), w.rows(), w.cols(), w.outerStride());
  etk::MinMaxObserver obs(etk::CalibSpec{bits, true, false}, 0);
  obs.observe(x);
  etk::fake_quantize(x, obs.params(), w);
}

// The search's quantized weights, computed once: bank[i].at(bits) is Model::layers[i]'s
// weight at that many stored bits, in the scheme of es::best_weight_scheme with the least
// weight error (the per-layer choice of scheme; the budget counts PWLQ's region bit).
// CPU seconds of tasks on threads other than `main_thread` go to *other_cpu (ns).
using Bank = std::vector<std::map<int, es::CodedWeights>>;

std::shared_ptr<const Bank> make_bank(const ocr::Model& model, const etk::Context& ctx, std::atomic<long long>& other_cpu,
                                      std::thread::id main_thread) {
  auto bank = std::make_shared<Bank>(model.layers.size());
  for (auto& m : *bank)
    for (int b : kWidths) m[b];  // every key exists: the tasks below only assign values
  etk::parallel_for(ctx, std::ptrdiff_t(model.layers.size() * kWidths.size()), [&](std::ptrdiff_t t, int) {
    const double c0 = ocr::thread_cpu_seconds();
    const size_t i = size_t(t) / kWidths.size();
    const int b = kWidths[size_t(t) % kWidths.size()];
    const auto& w = model.layers[i].w;
    (*bank)[i].at(b) = es::best_weight_scheme(etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols()), b);
    if (std::this_thread::get_id() != main_thread)
      other_cpu += static_cast<long long>(1e9 * (ocr::thread_cpu_seconds() - c0));
  });
  return bank;
}

// How many tensors of `config` use each scheme, e.g. "PWLQ 30, uniform 17".
std::string scheme_counts(const Bank& bank, const es::BitConfig& config) {
  std::map<std::string, int> n;
  for (size_t i = 0; i < config.size(); ++i)
    if (config[i] != es::kFloat) ++n[bank[i].at(config[i]).scheme];
  std::string s;
  for (const auto& [k, v] : n) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return s;
}

// How many tensors of `config` have each width, widest first, e.g. "8:3 6:10 5:20 4:14".
std::string width_counts(const es::BitConfig& config) {
  std::map<int, int, std::greater<int>> n;
  for (int b : config) ++n[b];
  std::string s;
  for (const auto& [b, k] : n) s += (s.empty() ? "" : " ") + std::to_string(b) + ":" + std::to_string(k);
  return s;
}

double process_cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The float model's probabilities of the calibration lines, each with its neg-entropy
// (so that every damage below takes one logarithm per value, not two).
struct CalibReference {
  std::vector<const ocr::Probs*> probs;
  std::vector<double> neg_entropy;
  explicit CalibReference(ocr::Study& study) {
    for (int l : calib_lines(study)) {
      probs.push_back(&study.float_probs(ocr::Set::Short)[size_t(l)]);
      neg_entropy.push_back(ocr::Study::neg_entropy(*probs.back()));
    }
  }
};

// Damage of the calibration lines' probabilities vs the float model's.
es::Damage damage_of(const CalibReference& ref, const std::vector<ocr::Probs>& probs) {
  es::Damage d;
  double n = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const ocr::Probs& p = *ref.probs[i];
    d.kl += ocr::Study::kl(p, probs[i], ref.neg_entropy[i]) / double(probs.size());
    for (size_t j = 0; j < p.p.size(); ++j) {
      const double e = double(p.p[j]) - double(probs[i].p[j]);
      d.mse += e * e;
    }
    n += double(p.p.size());
  }
  d.mse /= n;
  return d;
}

es::Damage damage_of(ocr::Study& study, const CalibReference& ref, const ocr::Run& run) {
  return damage_of(ref, study.forward(run, ocr::Set::Short, calib_lines(study)));
}

// ---- weights ----------------------------------------------------------------------------
// One candidate configuration of a budget, with what each objective predicted and what
// was measured: KL on the calibration lines, character errors and KL on validation lines.
struct Candidate {
  std::string name;
  es::BitConfig bits;
  bool min_max = false;                   // per-channel min-max weights (else the bank's schemes)
  double additive = NAN, second_order = NAN;  // predicted KL of the two table objectives (the bank)
  es::Damage measured;                    // calibration lines
  es::ValidationScore valid;              // validation lines: character errors, mean KL
};

struct WeightSearch {
  std::vector<es::QuantTensor> tensors;
  std::map<std::string, size_t> index;
  std::shared_ptr<const Bank> bank;  // MSE-clipped weights, every tensor at every width
  es::SensitivityTable table, second_order;
  std::map<std::pair<double, bool>, es::MixedPrecisionResult> results;  // (avg bits, exact)
  std::map<double, std::vector<Candidate>> candidates;                  // per budget, uniform first
  std::map<double, size_t> chosen;                                      // the best on validation
  size_t validation_evaluations = 0;  // candidates scored on validation
  size_t validation_parts = 0;        // parts of kValidCount / kValidParts lines scored
  // Wall seconds of choose_on_validation's phases: the candidates measured on the
  // calibration lines, the greedy on the model, the validation.
  double measure_seconds = 0, refine_seconds = 0, validation_seconds = 0;
  const Candidate& find(double avg, const std::string& name) const {
    for (const auto& c : candidates.at(avg))
      if (c.name == name) return c;
    throw std::logic_error("mixed precision: no candidate '" + name + "'");
  }
};

// bank == nullptr: per-channel min-max (the uniform rows' quantizer); else the bank's.
void apply_config(ocr::Run& run, std::shared_ptr<const std::map<std::string, size_t>> index,
                  const es::BitConfig& config, std::shared_ptr<const Bank> bank) {
  run.hooks.weights = [index, config, bank](const ocr::LayerInfo& l, etk::MatrixView<float> w, float*) {
    const auto it = index->find(l.name);
    if (it == index->end() || config[it->second] == es::kFloat) return;
    if (!bank) return quantize_weights(w, config[it->second]);
    const etk::RowMatrixXf& q = (*bank)[it->second].at(config[it->second]).w;
    if (q.rows() != w.rows() || q.cols() != w.cols()) throw std::logic_error("mixed precision: bank shape of " + l.name);
    for (Eigen::Index r = 0; r < w.rows(); ++r)
      for (Eigen::Index c = 0; c < w.cols(); ++c) w(r, c) = q(r, c);
  };
}

// The calibration lines' probabilities under a configuration of the bank's weights,
// resumed from saved activations: the float model's (src/prefix_cache.hpp), or those of
// one quantized configuration, the "base" (the model greedy's start), when the
// configuration differs from the base only from a later layer on. Either way bit for bit
// a full forward pass. forward() may run on several threads at once; set_base() must not
// run during a forward().
class CalibrationForward {
 public:
  CalibrationForward(const ocr::Model& model, std::vector<const float*> images, int width,
                     std::shared_ptr<const std::map<std::string, size_t>> index, std::shared_ptr<const Bank> bank)
      : model_(&model), images_(std::move(images)), width_(width), index_(std::move(index)), bank_(std::move(bank)),
        float_(std::make_shared<ocr::PrefixCache>(model, images_, width)) {}

  void set_base(const es::BitConfig& config) {
    const auto t0 = std::chrono::steady_clock::now();
    auto b = std::make_shared<Base>();
    b->config = config;
    ocr::Run run;
    apply_config(run, index_, config, bank_);
    b->model = model_->with_weights(run.hooks.weights);
    b->prefix = std::make_unique<ocr::PrefixCache>(b->model, images_, width_);
    std::lock_guard<std::mutex> lock(mutex_);
    base_ = std::move(b);
    ++base_count_;
    base_seconds_ += seconds_since(t0);
  }
  // set_base() calls, and their wall seconds.
  size_t base_count() const { return base_count_; }
  double base_seconds() const { return base_seconds_; }

  std::vector<ocr::Probs> forward(const es::BitConfig& config) {
    std::shared_ptr<const Base> base;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      base = base_;
    }
    ocr::Run run;
    apply_config(run, index_, config, bank_);
    const std::vector<int> from_float = changed_layers(config, es::BitConfig(config.size(), es::kFloat));
    if (base) {
      const std::vector<int> from_base = changed_layers(config, base->config);
      // A layer the base quantizes and the configuration leaves float cannot be rewritten
      // by the configuration's hook (it leaves float layers alone).
      bool usable = true;
      for (int l : from_base) usable = usable && config[size_t(l)] != es::kFloat;
      if (usable && first_step(from_base) > first_step(from_float)) return base->prefix->forward(from_base, run.hooks.weights);
    }
    return float_->forward(from_float, run.hooks.weights);
  }

  size_t checkpoint_bytes() const { return float_->checkpoint_bytes(); }

 private:
  struct Base {
    es::BitConfig config;
    ocr::Model model;
    std::unique_ptr<ocr::PrefixCache> prefix;  // on `model`
  };
  static std::vector<int> changed_layers(const es::BitConfig& a, const es::BitConfig& b) {
    std::vector<int> l;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) l.push_back(int(i));
    return l;
  }
  // The step a forward pass resumes at (the model's step count when nothing changed).
  int first_step(const std::vector<int>& layers) const {
    int first = int(model_->steps.size());
    for (int l : layers) first = std::min(first, model_->first_step_of(l));
    return first;
  }

  const ocr::Model* model_;
  std::vector<const float*> images_;
  int width_;
  std::shared_ptr<const std::map<std::string, size_t>> index_;
  std::shared_ptr<const Bank> bank_;
  std::shared_ptr<ocr::PrefixCache> float_;
  std::mutex mutex_;
  std::shared_ptr<const Base> base_;
  size_t base_count_ = 0;
  double base_seconds_ = 0;
};

// Squared error ||Q_b(W) - W||^2 of every tensor i at each width of widths[i].
std::vector<std::vector<double>> weight_errors(const Bank& bank, const std::vector<std::vector<int>>& widths) {
  std::vector<std::vector<double>> e;
  for (size_t i = 0; i < bank.size(); ++i) {
    e.emplace_back();
    for (int b : widths[i]) e.back().push_back(bank[i].at(b).error);
  }
  return e;
}

// Character errors (edit distance to the truth) and KL vs float (summed over the lines,
// divided by all kValidCount) on part `part` of kValidParts of the validation lines.
constexpr size_t kValidParts = 4;
es::ValidationScore validation_score(ocr::Study& study, std::shared_ptr<const std::map<std::string, size_t>> index,
                                     const es::BitConfig& config, std::shared_ptr<const Bank> bank, size_t part) {
  ocr::Run run;
  apply_config(run, std::move(index), config, std::move(bank));
  const std::vector<int> all = study.validation_lines(ocr::Set::Short, kValidCount);
  const size_t per = (all.size() + kValidParts - 1) / kValidParts;
  const std::vector<int> lines(all.begin() + std::ptrdiff_t(std::min(all.size(), part * per)),
                               all.begin() + std::ptrdiff_t(std::min(all.size(), (part + 1) * per)));
  es::ValidationScore v;
  if (lines.empty()) return v;
  const std::vector<ocr::Probs> probs = study.forward(run, ocr::Set::Short, lines);
  const size_t first = study.data(ocr::Set::Short).size() + study.calibration_data(ocr::Set::Short).size();
  const auto& truth = study.validation_data(ocr::Set::Short).truth;
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto t = ocr::utf8_decode(truth[size_t(lines[k]) - first]);
    const auto g = ocr::utf8_decode(study.decode(probs[k]));
    v.primary += ocr::edit_distance(std::u32string(t.begin(), t.end()), std::u32string(g.begin(), g.end()));
    v.secondary += ocr::Study::kl(study.float_probs(ocr::Set::Short)[size_t(lines[k])], probs[k]) / double(all.size());
  }
  return v;
}

// "99.12% chars" for a candidate scored on every part, else its character errors so far.
std::string validation_text(const es::ValidationScore& v, size_t parts_scored, double chars) {
  char b[96];
  if (parts_scored == kValidParts)
    std::snprintf(b, sizeof b, "%.2f%% chars", 100.0 * (1.0 - v.primary / chars));
  else
    std::snprintf(b, sizeof b, "stopped after %zu parts, %.0f character errors so far", parts_scored, v.primary);
  return b;
}

std::string num(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

double validation_chars(ocr::Study& study) {
  const std::vector<int> lines = study.validation_lines(ocr::Set::Short, kValidCount);
  const size_t first = study.data(ocr::Set::Short).size() + study.calibration_data(ocr::Set::Short).size();
  double n = 0;
  for (int l : lines) n += double(ocr::utf8_decode(study.validation_data(ocr::Set::Short).truth[size_t(l) - first]).size());
  return n;
}

// Per budget: the candidates (uniform, the additive greedy and DP, the second-order DP,
// the greedy on the real model started from the best of those on the calibration lines),
// each measured on the calibration lines, scored on the validation lines; the best on
// validation is chosen (uniform wins ties). Prints every candidate's figures.
void choose_on_validation(ocr::Study& study, const CalibReference& ref, WeightSearch& s, es::SensitivityCache& cache,
                          CalibrationForward& forward,
                          std::shared_ptr<const std::map<std::string, size_t>> index,
                          std::shared_ptr<std::atomic<long long>> other_cpu, std::thread::id main_thread) {
  const auto t0 = std::chrono::steady_clock::now();
  s.second_order = es::second_order_sensitivity(s.table, weight_errors(*s.bank, s.table.bits), kProbeBits);
  auto fill = [&](Candidate c) {
    if (c.min_max) return c;
    c.additive = es::predicted_damage(s.table, c.bits, es::Metric::kl);
    c.second_order = es::predicted_damage(s.second_order, c.bits, es::Metric::kl);
    return c;
  };
  for (double avg : kBudgets) {
    const es::Budget b{es::BudgetKind::average_bits, avg};
    auto& list = s.candidates[avg];
    const es::BitConfig uniform = es::uniform_configuration(s.tensors, kWidths, b);
    list.push_back(fill({"uniform", uniform, true}));
    list.push_back(fill({"uniform (scheme per layer)", uniform}));
    list.push_back(fill({"greedy MP", s.results.at({avg, false}).choice.bits}));
    list.push_back(fill({"exact DP", s.results.at({avg, true}).choice.bits}));
    list.push_back(fill({"second-order DP", es::exact_mixed_precision(s.tensors, s.second_order, b).choice.bits}));
  }
  std::vector<es::BitConfig> all;
  for (const auto& l : s.candidates)
    for (const auto& c : l.second)
      if (!c.min_max) all.push_back(c.bits);
  {
    etk::SimpleThreadPool prefetch_pool(2);
    cache.prefetch(all, etk::Context{&prefetch_pool});
  }
  std::map<es::BitConfig, es::Damage> min_max_measured;  // 4, 4.25 and 4.5 bits share one
  for (auto& l : s.candidates)
    for (auto& c : l.second) {
      if (!c.min_max) {
        c.measured = cache.evaluate(c.bits);
        continue;
      }
      const auto it = min_max_measured.find(c.bits);
      if (it != min_max_measured.end()) {
        c.measured = it->second;
        continue;
      }
      ocr::Run run;
      apply_config(run, index, c.bits, nullptr);
      c.measured = min_max_measured[c.bits] = damage_of(study, ref, run);
    }
  s.measure_seconds = seconds_since(t0);
  es::RefineOptions ro;
  ro.max_evaluations = kRefineEvaluations;
  etk::SimpleThreadPool refine_pool(2);
  for (double avg : kBudgets) {
    auto& list = s.candidates[avg];
    const Candidate* start = &list[1];
    for (const auto& c : list)
      if (!c.min_max && c.measured.kl < start->measured.kl) start = &c;
    // Its moves resume from the activations of its start where they can. (Rebuilding them
    // after each kept move as well cost more than the later resumes saved: 65.5 s CPU for
    // the whole search against 59.5, one run each.)
    forward.set_base(start->bits);
    const es::RefineResult r = es::refine_on_model(cache, s.tensors, s.table, {es::BudgetKind::average_bits, avg},
                                                   start->bits, ro, etk::Context{&refine_pool});
    std::fprintf(stderr, "mixed precision: avg %s: greedy on the model from %s: KL %.4g -> %.4g, %zu of %zu moves kept\n",
                 budget_name(avg).c_str(), start->name.c_str(), r.start.kl, r.damage.kl, r.accepted, r.evaluations - 1);
    Candidate c = fill({"greedy on the model", r.bits});
    c.measured = r.damage;
    list.push_back(c);
  }
  s.refine_seconds = seconds_since(t0) - s.measure_seconds;
  // Per budget, every candidate on the validation lines, on 2 threads, in parts: the
  // lowest measured KL first, and a candidate stops once its character errors exceed a
  // complete one's (the same choice as scoring every line of every candidate).
  const double chars = validation_chars(study);
  std::fprintf(stderr,
               "mixed precision: candidates per budget (KL predicted by the additive table and by the second-order "
               "table, measured on %d calibration lines; characters and KL on %d validation lines, %.0f characters, "
               "in %zu parts)\n",
               kCalibCount, kValidCount, chars, kValidParts);
  etk::SimpleThreadPool pool(2);
  etk::Context ctx;
  ctx.pool = &pool;
  // A configuration met again (the model greedy that kept no move, say) is not rescored.
  std::map<std::tuple<bool, es::BitConfig, size_t>, es::ValidationScore> seen;
  std::mutex seen_mutex;
  for (double avg : kBudgets) {
    auto& list = s.candidates[avg];
    std::vector<size_t> order(list.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return list[a].measured.kl < list[b].measured.kl; });
    const es::PartedValidationChoice scored = es::choose_on_validation_in_parts(
        list.size(), kValidParts,
        [&](size_t i, size_t part) {
          const auto key = std::make_tuple(list[i].min_max, list[i].bits, part);
          {
            std::lock_guard<std::mutex> lock(seen_mutex);
            const auto it = seen.find(key);
            if (it != seen.end()) return it->second;
          }
          const double c0 = ocr::thread_cpu_seconds();
          const es::ValidationScore v =
              validation_score(study, index, list[i].bits, list[i].min_max ? nullptr : s.bank, part);
          if (std::this_thread::get_id() != main_thread)
            *other_cpu += static_cast<long long>(1e9 * (ocr::thread_cpu_seconds() - c0));
          std::lock_guard<std::mutex> lock(seen_mutex);
          if (seen.emplace(key, v).second) ++s.validation_parts;
          return v;
        },
        order, ctx);
    s.validation_evaluations += list.size();
    s.chosen[avg] = scored.best;
    for (size_t i = 0; i < list.size(); ++i) {
      Candidate& c = list[i];
      c.valid = scored.scores[i];
      std::fprintf(stderr,
                   "mixed precision:   avg %-4s %-26s %.3f bits  predicted KL %s (additive) %s (second-order)  "
                   "measured KL %.4g  validation %s, KL %.4g  [%s; widths %s]%s\n",
                   budget_name(avg).c_str(), c.name.c_str(), es::average_bits(s.tensors, c.bits), num(c.additive).c_str(),
                   num(c.second_order).c_str(), c.measured.kl,
                   validation_text(c.valid, scored.parts_scored[i], chars).c_str(), c.valid.secondary,
                   c.min_max ? "uniform min-max" : scheme_counts(*s.bank, c.bits).c_str(), width_counts(c.bits).c_str(),
                   i == scored.best ? "  <- chosen" : "");
    }
  }
  s.validation_seconds = seconds_since(t0) - s.measure_seconds - s.refine_seconds;
}

// Built once per Study through an ocr::Lazy (shared by the rows, published when complete).
std::shared_ptr<WeightSearch> weight_search(ocr::Study& study) {
  auto s = std::make_shared<WeightSearch>();
  const auto t0 = std::chrono::steady_clock::now();
  const double process0 = process_cpu_seconds(), thread0 = ocr::thread_cpu_seconds();
  const auto main_thread = std::this_thread::get_id();
  // CPU seconds of evaluations run on the search's other threads (in nanoseconds).
  auto other_cpu = std::make_shared<std::atomic<long long>>(0);
  const ocr::Model& model = study.model();
  // Tensor i is Model::layers[i].
  for (const ocr::Layer& l : model.layers) {
    s->index[l.info.name] = s->tensors.size();
    s->tensors.push_back(es::QuantTensor{l.info.name, std::int64_t(l.w.size()), 0, 8, 4 * std::int64_t(l.w.rows())});
  }
  auto index = std::make_shared<const std::map<std::string, size_t>>(s->index);
  {
    etk::SimpleThreadPool pool(2);
    etk::Context ctx;
    ctx.pool = &pool;
    s->bank = make_bank(model, ctx, *other_cpu, main_thread);
  }
  const double t_bank = seconds_since(t0);
  auto bank = s->bank;
  std::vector<const float*> images;
  for (int line : calib_lines(study)) images.push_back(study.image(ocr::Set::Short, line));
  auto forward = std::make_shared<CalibrationForward>(model, images, study.data(ocr::Set::Short).width, index, bank);
  auto ref = std::make_shared<const CalibReference>(study);
  const double t_prefix = seconds_since(t0);
  // Local: the cache and the checkpoints it holds (~200 MB each) go when the search is done.
  es::SensitivityCache cache(
      [ref, forward, other_cpu, main_thread](const es::BitConfig& config) {
        const double c0 = ocr::thread_cpu_seconds();
        const es::Damage d = damage_of(*ref, forward->forward(config));
        if (std::this_thread::get_id() != main_thread)
          *other_cpu += static_cast<long long>(1e9 * (ocr::thread_cpu_seconds() - c0));
        return d;
      },
      s->tensors.size());
  // A tensor holding less than kSmallShare of the weights is measured at the probe width
  // alone, its other widths estimated from that (es::fill_from_probe).
  double weights = 0;
  for (const auto& t : s->tensors) weights += double(t.elements);
  std::vector<std::vector<int>> measured_widths;
  size_t small = 0;
  for (const auto& t : s->tensors) {
    const bool is_small = double(t.elements) < kSmallShare * weights;
    small += is_small;
    measured_widths.push_back(is_small ? std::vector<int>{kProbeBits} : kWidths);
  }
  etk::SimpleThreadPool sensitivity_pool(2);
  s->table = es::fill_from_probe(es::measure_sensitivity(cache, measured_widths, etk::Context{&sensitivity_pool}),
                                 kWidths, weight_errors(*bank, std::vector<std::vector<int>>(s->tensors.size(), kWidths)),
                                 kProbeBits);
  const double t_sens = seconds_since(t0);
  for (double avg : kBudgets)
    for (bool exact : {false, true}) {
      const es::Budget b{es::BudgetKind::average_bits, avg};
      s->results[{avg, exact}] = exact ? es::exact_mixed_precision(s->tensors, s->table, b)
                                       : es::greedy_mixed_precision(s->tensors, s->table, b);
    }
  const double t_search = seconds_since(t0);
  choose_on_validation(study, *ref, *s, cache, *forward, index, other_cpu, main_thread);
  const double wall = seconds_since(t0);
  const double cpu = ocr::thread_cpu_seconds() - thread0 + 1e-9 * double(other_cpu->load());
  std::fprintf(stderr,
               "mixed precision: weight search %.1f s wall, %.1f s CPU on its threads (process CPU %.1f s, "
               "with any rows running meanwhile): weight bank (schemes per tensor and width) %.1f s, float prefix cache %.1f s (%.0f MB of checkpoints), "
               "sensitivity %.1f s (%zu small tensors at %d bits only), greedy + DP %.2f s, candidates measured %.1f s, greedy on the model %.1f s "
               "(%zu resume points, %.1f s), validation %.1f s; %zu forward evaluations of %zu lines, %zu cache hits; validation of %zu "
               "candidates: %zu parts of %zu lines scored (of %zu)\n",
               wall, cpu, process_cpu_seconds() - process0, t_bank, t_prefix - t_bank, double(forward->checkpoint_bytes()) / 1e6,
               t_sens - t_prefix, small, kProbeBits, t_search - t_sens, s->measure_seconds, s->refine_seconds,
               forward->base_count(), forward->base_seconds(), s->validation_seconds,
               cache.evaluations(), size_t(kCalibCount),
               cache.hits(), s->validation_evaluations, s->validation_parts, size_t(kValidCount) / kValidParts,
               s->validation_evaluations * kValidParts);
  return s;
}

// ---- activations ------------------------------------------------------------------------
struct ActivationSearch {
  // Per site (LayerNorm output 0..4): calibration rows and the consuming linear [120, out].
  std::vector<etk::RowMatrixXf> calib, next;
  // Per projection kind (0 PCA, 1 compression-aware), per site: candidate codecs + damage.
  std::vector<std::vector<std::vector<es::ActivationCodec>>> codecs;
  std::vector<std::vector<std::vector<es::CompressionCandidate>>> candidates;
};

const char* consumer_role(int site) { return site == 4 ? "head" : (site % 2 == 0 ? "qkv" : "fc1"); }

// Built once per Study through an ocr::Lazy, like weight_search.
std::shared_ptr<ActivationSearch> activation_search(ocr::Study& study) {
  auto s = std::make_shared<ActivationSearch>();
  const auto t0 = std::chrono::steady_clock::now();
  s->calib.resize(5);
  s->next.resize(5);
  study.model().with_weights([&](const ocr::LayerInfo& l, etk::MatrixView<float> w, float*) {
    for (int site = 0; site < 5; ++site)
      if (l.role == consumer_role(site) && (site == 4 || l.block == site / 2)) s->next[size_t(site)] = w.transpose();
  });
  {
    ocr::Run probe;
    auto rows = std::make_shared<std::vector<std::vector<float>>>(5);
    probe.hooks.transformer_only = true;
    probe.hooks.activation = [rows](const ocr::ActivationSite& site, float* d) {
      if (site.point != ocr::Point::LayerNormOutput) return;
      auto& v = (*rows)[size_t(site.index)];
      v.insert(v.end(), d, d + size_t(site.rows) * size_t(site.cols));
    };
    study.forward(probe, ocr::Set::Short, study.calibration_lines(ocr::Set::Short, 16));
    for (int site = 0; site < 5; ++site) {
      const auto& v = (*rows)[size_t(site)];
      s->calib[size_t(site)] = etk::matrix_view(v.data(), std::ptrdiff_t(v.size() / 120), 120, 120);
    }
  }
  const CalibReference ref(study);
  size_t evaluations = 0;
  s->codecs.resize(2);
  s->candidates.resize(2);
  for (int kind = 0; kind < 2; ++kind) {
    s->codecs[size_t(kind)].resize(5);
    s->candidates[size_t(kind)].resize(5);
    for (int site = 0; site < 5; ++site) {
      const auto& x = s->calib[size_t(site)];
      const auto& w = s->next[size_t(site)];
      for (std::ptrdiff_t k : {120, 96, 72, 48, 24})
        for (int bits : {8, 6, 4, 3, 2}) {
          es::CodecOptions o;
          o.projection = k == 120 ? es::ProjectionKind::none
                                  : (kind == 0 ? es::ProjectionKind::pca : es::ProjectionKind::compression_aware);
          o.reduced_dim = k == 120 ? 0 : k;
          o.group_size = 12;
          o.average_bits = bits;
          auto codec = std::make_shared<es::ActivationCodec>(es::calibrate_codec(
              etk::matrix_view(x.data(), x.rows(), x.cols(), x.cols()), o,
              etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols())));
          ocr::Run run;
          run.hooks.transformer_only = true;
          run.hooks.activation = [codec, site](const ocr::ActivationSite& a, float* d) {
            if (a.point != ocr::Point::LayerNormOutput || a.index != site) return;
            auto v = etk::matrix_view(d, a.rows, a.cols, a.cols);
            const auto bytes = codec->encode(etk::matrix_view(static_cast<const float*>(d), a.rows, a.cols, a.cols));
            codec->decode(bytes.data(), bytes.size(), v);
          };
          const es::Damage d = damage_of(study, ref, run);
          ++evaluations;
          s->codecs[size_t(kind)][size_t(site)].push_back(*codec);
          s->candidates[size_t(kind)][size_t(site)].push_back({double(codec->row_bytes()), d.kl});
        }
    }
  }
  std::fprintf(stderr, "mixed precision: activation search %.1f s, %zu forward evaluations of %zu lines\n",
               seconds_since(t0), evaluations, size_t(kCalibCount));
  return s;
}

}  // namespace

ETK_OCR_TECHNIQUE(mixed_precision, 50) {
  auto weights = std::make_shared<ocr::Lazy<WeightSearch>>();
  auto activations = std::make_shared<ocr::Lazy<ActivationSearch>>();
  for (double avg : kBudgets) {
    const bool full = std::find(kFullBudgets.begin(), kFullBudgets.end(), avg) != kFullBudgets.end();
    if (full)
      study.add("weights uniform", budget_name(avg) + " bits", ocr::Set::Short, [avg](ocr::Run& run) {
        run.hooks.weights = [avg](const ocr::LayerInfo&, etk::MatrixView<float> w, float*) {
          quantize_weights(w, int(avg));
        };
        run.effect = [avg] { return ocr::Effect{"bits per value", avg}; };
      });
    // Uniform width with the bank's schemes, the additive table's greedy and DP, and the configuration returned:
    // the best of every candidate on validation lines. (The second-order DP and the greedy
    // on the model are candidates whose figures go to stderr, not rows: the machine is
    // shared, and each row costs a pass over the 400 scored lines.)
    for (const char* name : {"uniform (scheme per layer)", "greedy MP", "exact DP", "validated"}) {
      if (!full && std::string(name) != "validated") continue;
      study.add(name[0] == 'u' ? std::string("weights ") + name : std::string("weights mixed (") + name + ")",
                name[0] == 'u' ? budget_name(avg) + " bits" : "avg " + budget_name(avg), ocr::Set::Short,
                [&study, weights, avg, name = std::string(name)](ocr::Run& run) {
                  auto s = weights->get([&study] { return weight_search(study); });
                  const Candidate& c = name == "validated" ? s->candidates.at(avg)[s->chosen.at(avg)]
                                                           : s->find(avg, name);
                  apply_config(run, std::make_shared<const std::map<std::string, size_t>>(s->index), c.bits,
                               c.min_max ? nullptr : s->bank);
                  const double bits = es::average_bits(s->tensors, c.bits);
                  run.effect = [bits] { return ocr::Effect{"bits per value", bits}; };
                });
    }
  }
  for (int kind = 0; kind < 2; ++kind)
    for (int ratio : {2, 3, 4})
      study.add(kind == 0 ? "activations (PCA)" : "activations (compression-aware)",
                std::to_string(ratio) + "x fewer bytes than int8", ocr::Set::Short,
                [&study, activations, kind, ratio](ocr::Run& run) {
                  auto s = activations->get([&study] { return activation_search(study); });
                  const auto& cand = s->candidates[size_t(kind)];
                  // Budget per token row over the five sites: 5 * 120 / ratio bytes.
                  const auto a = es::allocate_compression_ratios(cand, 5.0 * 120.0 / ratio);
                  std::vector<es::ActivationCodec> chosen;
                  for (int site = 0; site < 5; ++site)
                    chosen.push_back(s->codecs[size_t(kind)][size_t(site)][size_t(a.choice[size_t(site)])]);
                  auto codecs = std::make_shared<std::vector<es::ActivationCodec>>(std::move(chosen));
                  auto moved = std::make_shared<std::pair<double, double>>(0.0, 0.0);  // bytes, values
                  run.hooks.transformer_only = true;
                  run.hooks.activation = [codecs, moved](const ocr::ActivationSite& site, float* d) {
                    if (site.point != ocr::Point::LayerNormOutput) return;
                    const auto& c = (*codecs)[size_t(site.index)];
                    auto v = etk::matrix_view(d, site.rows, site.cols, site.cols);
                    const auto bytes = c.encode(etk::matrix_view(static_cast<const float*>(d), site.rows, site.cols, site.cols));
                    c.decode(bytes.data(), bytes.size(), v);
                    moved->first += double(bytes.size());
                    moved->second += double(v.size());
                  };
                  run.effect = [moved] {
                    return ocr::Effect{"bits per value", 8.0 * moved->first / std::max(1.0, moved->second)};
                  };
                });
  using Q = ocr::Quantity;
  const ocr::Set s = ocr::Set::Short;
  study.paper_claim("MPTQ-ViT",
                    "+0.90 to +23.35% over the state of the art for 4-bit ViTs; +3.82 to +78.14% with mixed "
                    "precision at 5 bits (ImageNet)",
                    {{"weights uniform", "4 bits", s, {Q::CharAcc}},
                     {"weights mixed (greedy MP)", "avg 4", s, {Q::CharAcc}},
                     {"weights mixed (exact DP)", "avg 4", s, {Q::CharAcc}},
                     {"weights uniform", "5 bits", s, {Q::CharAcc}},
                     {"weights mixed (greedy MP)", "avg 5", s, {Q::Effect, Q::CharAcc}},
                     {"weights mixed (exact DP)", "avg 5", s, {Q::Effect, Q::CharAcc}},
                     {"weights mixed (validated)", "avg 4", s, {Q::Effect, Q::CharAcc}},
                     {"weights mixed (validated)", "avg 5", s, {Q::Effect, Q::CharAcc}}});
  study.paper_claim("activation compression", "2.91-5.97x less memory access at negligible accuracy drop (CNNs)",
                    {{"activations (compression-aware)", "4x fewer bytes than int8", s, {Q::Effect, Q::CharChange}},
                     {"activations (compression-aware)", "3x fewer bytes than int8", s, {Q::Effect, Q::CharChange}},
                     {"activations (PCA)", "4x fewer bytes than int8", s, {Q::Effect, Q::CharChange}}});
}
