// techniques_mixed_precision.cpp: mixed-precision weights on the sentence encoder, the
// search of the OCR report (examples/ocr/techniques/mixed_precision.cpp) through the same
// library API (etk/search/mixed_precision.hpp, validated_mixed_precision.hpp,
// weight_schemes.hpp).
//
// Tensors: every linear of both layers and the final tanh layer (10; the embedding table
// stays float, as in the weight rows of techniques_quant.cpp), widths {8,6,5,4,3,2} stored
// bits, and per width the scheme of lower weight error (es::best_weight_scheme: uniform
// per output channel with the MSE clip, or PWLQ with one code bit less plus its region
// bit, both bias corrected). Damage: the MSE of the unit-norm embeddings against float
// (2 (1 - cos) / 512 per sentence) on the calibration sentences (every 24th r-cran-tm
// sentence). Candidates per average of 4, 5 and 6 stored bits: uniform min-max per channel
// (the weights-uN quantizer), the scheme-per-layer bank at one width, the additive table's
// Greedy MP and exact DP, the second-order DP, and the greedy that re-evaluates the model
// started from the best measured of those. Each is scored on the validation sentences
// (every 24th r-cran-tm sentence from the 13th: disjoint from calibration and from every
// scored set) by mean 1 - cos, then worst 1 - cos; the best is the "mixedN" row (uniform
// min-max wins ties), with "mixed-uniformN" beside it at 5 and 6 bits (at 4 bits it is
// the weights-u4 row). stderr prints each candidate's predicted, measured and validation
// figures, and the search's cost. The search and the five rows cost about 40 CPU-s.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "etk/quant/uniform.hpp"
#include "etk/search/mixed_precision.hpp"
#include "etk/search/validated_mixed_precision.hpp"
#include "etk/search/weight_schemes.hpp"
#include "techniques.hpp"

namespace sentence {

namespace {

namespace es = etk::search;

const std::vector<int> kWidths = {8, 6, 5, 4, 3, 2};
const std::vector<int> kBudgets = {4, 5, 6};
// Calibration: r-cran-tm sentences 0, 24, 48, ... (21 of 488); validation: 12, 36, ... (20).
constexpr std::size_t kEvery = 24;
constexpr std::size_t kRefineEvaluations = 12;
constexpr int kProbeBits = 6;

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// The quantized linears, in a fixed order.
std::vector<Linear*> linears(UseModel& m) {
  std::vector<Linear*> all{&m.tanh_layer};
  for (auto& L : m.layers)
    for (Linear* l : {&L.qkv, &L.out, &L.ffn1, &L.ffn2, &L.residual})
      if (!l->w.empty()) all.push_back(l);
  return all;
}

// A linear's weights as [out, in] (rows = output channels), and back.
etk::RowMatrixXf out_in(const Linear& l) { return etk::matrix_view(l.w.data(), l.in, l.out, l.out).transpose(); }
void store(Linear& l, const etk::RowMatrixXf& q /* [out, in] */) {
  const etk::RowMatrixXf t = q.transpose();
  std::copy(t.data(), t.data() + t.size(), l.w.begin());
}

etk::RowMatrixXf uniform_min_max(const etk::RowMatrixXf& w, int bits) {
  const auto x = etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols());
  return etk::fake_quantize(x, etk::per_channel(x, 0, [bits](etk::ConstMatrixView<float> c) {
                              return etk::QuantParams::symmetric(c.cwiseAbs().maxCoeff(), bits);
                            }));
}

std::vector<TokenIds> every(const std::vector<TokenIds>& all, std::size_t first) {
  std::vector<TokenIds> out;
  for (std::size_t i = first; i < all.size(); i += kEvery) out.push_back(all[i]);
  return out;
}

struct Candidate {
  std::string name;
  es::BitConfig bits;
  bool min_max = false;
  double additive = NAN, second_order = NAN;  // predicted MSE (the bank's tables)
  es::Damage measured;                        // calibration sentences
  es::ValidationScore valid;                  // validation: mean 1 - cos, worst 1 - cos
};

struct Search {
  std::once_flag once;
  std::vector<es::QuantTensor> tensors;
  std::vector<std::map<int, es::CodedWeights>> bank;  // per tensor, per width
  std::vector<etk::RowMatrixXf> float_w;              // per tensor, [out, in]
  std::map<int, std::vector<Candidate>> candidates;
  std::map<int, std::size_t> chosen;
  std::size_t validated = 0;  // candidates scored on the validation sentences

  // A copy of the model with tensor i at config[i] bits (bank, or min-max when asked).
  std::shared_ptr<UseModel> apply(const UseModel& model, const es::BitConfig& config, bool min_max) const {
    auto m = std::make_shared<UseModel>(model);
    const auto all = linears(*m);
    for (std::size_t i = 0; i < all.size(); ++i)
      if (config[i] != es::kFloat)
        store(*all[i], min_max ? uniform_min_max(float_w[i], config[i]) : bank[i].at(config[i]).w);
    return m;
  }

  void run(const Calibration& cal);
};

// 1 - cos of each sentence (embeddings are unit norm).
std::vector<double> distances(const std::vector<float>& a, const std::vector<float>& b, std::size_t d) {
  std::vector<double> out;
  for (std::size_t s = 0; s * d < a.size(); ++s) {
    double dot = 0;
    for (std::size_t j = 0; j < d; ++j) dot += double(a[s * d + j]) * double(b[s * d + j]);
    out.push_back(1.0 - dot);
  }
  return out;
}

void Search::run(const Calibration& cal) {
  const double c0 = cpu_seconds();
  UseModel probe = cal.model;
  for (Linear* l : linears(probe)) {
    float_w.push_back(out_in(*l));
    const etk::RowMatrixXf& w = float_w.back();
    tensors.push_back(es::QuantTensor{"linear " + std::to_string(tensors.size()), std::int64_t(w.size()), 0, 8, 4 * std::int64_t(w.rows())});
    bank.emplace_back();
    for (int b : kWidths) bank.back()[b] = es::best_weight_scheme(etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols()), b);
  }
  const double t_bank = cpu_seconds() - c0;
  const std::vector<TokenIds> calib = every(cal.sentences, 0), valid = every(cal.sentences, kEvery / 2);
  const std::size_t d = std::size_t(cal.model.embedding_dim());
  const std::vector<float> calib_ref = embed_all(cal.model, {}, calib), valid_ref = embed_all(cal.model, {}, valid);
  es::SensitivityCache cache(
      [&](const es::BitConfig& config) {
        const std::vector<float> e = embed_all(*apply(cal.model, config, false), {}, calib);
        double sum = 0;
        for (double x : distances(e, calib_ref, d)) sum += x;
        // ||a - b||^2 = 2 (1 - cos) for unit rows: MSE per value.
        return es::Damage{2 * sum / double(e.size()), 0.0};
      },
      tensors.size());
  const es::Metric metric = es::Metric::mse;
  const es::SensitivityTable table = es::measure_sensitivity(cache, kWidths);
  std::vector<std::vector<double>> errors;
  for (std::size_t i = 0; i < bank.size(); ++i) {
    errors.emplace_back();
    for (int b : table.bits[i]) errors.back().push_back(bank[i].at(b).error);
  }
  const es::SensitivityTable second = es::second_order_sensitivity(table, errors, kProbeBits);
  auto fill = [&](Candidate c) {
    if (!c.min_max) {
      c.additive = es::predicted_damage(table, c.bits, metric);
      c.second_order = es::predicted_damage(second, c.bits, metric);
      c.measured = cache.evaluate(c.bits);
    }
    return c;
  };
  es::RefineOptions ro;
  ro.max_evaluations = kRefineEvaluations;
  ro.batch = 1;
  ro.metric = metric;
  for (int avg : kBudgets) {
    const es::Budget b{es::BudgetKind::average_bits, double(avg)};
    auto& list = candidates[avg];
    const es::BitConfig uniform = es::uniform_configuration(tensors, kWidths, b);
    list.push_back(fill({"uniform min-max", uniform, true}));
    list.push_back(fill({"uniform (scheme per layer)", uniform}));
    list.push_back(fill({"greedy MP", es::greedy_mixed_precision(tensors, table, b, metric).choice.bits}));
    list.push_back(fill({"exact DP", es::exact_mixed_precision(tensors, table, b, metric).choice.bits}));
    list.push_back(fill({"second-order DP", es::exact_mixed_precision(tensors, second, b, metric).choice.bits}));
    const Candidate* start = &list[1];
    for (const auto& c : list)
      if (!c.min_max && c.measured.mse < start->measured.mse) start = &c;
    const es::RefineResult r = es::refine_on_model(cache, tensors, table, b, start->bits, ro);
    list.push_back(fill({"greedy on the model", r.bits}));
    const es::ValidationChoice v = es::choose_on_validation(list.size(), [&](std::size_t i) {
      const auto dist = distances(embed_all(*apply(cal.model, list[i].bits, list[i].min_max), {}, valid), valid_ref, d);
      es::ValidationScore s;
      for (double x : dist) s.primary += x / double(dist.size()), s.secondary = std::max(s.secondary, x);
      return s;
    });
    chosen[avg] = v.best;
    validated += list.size();
    for (std::size_t i = 0; i < list.size(); ++i) {
      Candidate& c = list[i];
      c.valid = v.scores[i];
      std::string schemes;
      if (!c.min_max) {
        std::map<std::string, int> n;
        for (std::size_t t = 0; t < c.bits.size(); ++t) ++n[bank[t].at(c.bits[t]).scheme];
        for (const auto& [k, count] : n) schemes += (schemes.empty() ? "" : ", ") + k + " " + std::to_string(count);
      }
      std::fprintf(stderr,
                   "sentence mixed precision: avg %d %-26s %.3f bits  predicted MSE %.3g (additive) %.3g "
                   "(second-order)  measured MSE %.3g  validation mean 1-cos %.3g, worst %.3g  widths %s [%s]%s\n",
                   avg, c.name.c_str(), es::average_bits(tensors, c.bits), c.additive, c.second_order, c.measured.mse,
                   c.valid.primary, c.valid.secondary, es::describe_config(c.bits).c_str(),
                   c.min_max ? "uniform min-max" : schemes.c_str(), i == v.best ? "  <- chosen" : "");
    }
  }
  std::fprintf(stderr,
               "sentence mixed precision: search %.1f s CPU (one thread; weight bank %.1f s), %zu evaluations on %zu "
               "calibration sentences, %zu candidates scored on %zu validation sentences\n",
               cpu_seconds() - c0, t_bank, cache.evaluations(), calib.size(), validated, valid.size());
}

Technique row(const std::shared_ptr<Search>& s, int avg, bool uniform) {
  Technique t;
  t.family = "mixed-precision weights";
  t.name = (uniform ? "mixed-uniform" : "mixed") + std::to_string(avg);
  t.what = uniform ? std::to_string(avg) + "-bit uniform min-max per channel, every linear (the search's uniform candidate)"
                   : "mixed precision, average " + std::to_string(avg) +
                         " stored bits: widths 8..2 and uniform / PWLQ per linear, the best on validation sentences";
  t.claim = "MPTQ-ViT: mixed precision beats single precision at the same size";
  t.setup = [s, avg, uniform](RowRun& run, const Calibration& cal) {
    std::call_once(s->once, [&] { s->run(cal); });
    const auto& list = s->candidates.at(avg);
    const Candidate& c = uniform ? list[0] : list[s->chosen.at(avg)];
    run.model = s->apply(cal.model, c.bits, c.min_max);
    const double bits = es::average_bits(s->tensors, c.bits);
    run.effect = [bits] { return Effect{"bits per value", bits}; };
  };
  return t;
}

}  // namespace

void mixed_precision_rows(std::vector<Technique>& t) {
  auto s = std::make_shared<Search>();
  for (int avg : kBudgets)
    for (bool uniform : {true, false})
      if (!(uniform && avg == 4)) t.push_back(row(s, avg, uniform));
}

}  // namespace sentence
