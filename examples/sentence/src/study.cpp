// study.cpp: see study.hpp.
#include "study.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <stdexcept>

#include "curve_chart.hpp"
#include "paths.hpp"
#include "quality.hpp"
#include "reuters.hpp"
#include "reuters_arff.hpp"
#include "spam.hpp"
#include "tokenizer.hpp"

namespace sentence {

namespace {

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

std::vector<TokenIds> tokenize(const Tokenizer& tok, const std::vector<std::string>& lines) {
  std::vector<TokenIds> ids;
  for (const auto& l : lines) ids.push_back(tok.encode(l));
  return ids;
}

std::vector<std::string> evenly_spaced(const std::vector<std::string>& all, std::size_t n) {
  n = std::min(n, all.size());
  std::vector<std::string> out;
  for (std::size_t k = 0; k < n; ++k) out.push_back(all[(2 * k + 1) * all.size() / (2 * n)]);
  return out;
}

Technique combined(const std::string& name, const std::string& what, const std::string& claim, PruneRule rule,
                   double value, PrunePoint point) {
  Technique t;
  t.family = "combined";
  t.name = name, t.what = what, t.claim = claim;
  t.options.linears = LinearKind::w8a8;
  t.options.prune = rule;
  t.options.prune_value = value;
  t.options.point = point;
  return t;
}

}  // namespace

std::vector<Technique> sentence_techniques() {
  std::vector<Technique> t(1);
  t[0].family = "float";
  t[0].name = "float";
  t[0].what = "float runner (Eigen linears, etk::dense_attention)";
  pruning_rows(t);
  quant_rows(t);
  latte_rows(t);
  gqa_lut_rows(t);
  compression_rows(t);
  mixed_precision_rows(t);
  t.push_back(combined("w8a8-topk50", "W8A8 + top-k 50% after layer 0 attention, carried", "", PruneRule::top_k, 0.5,
                       PrunePoint::layer0_attention));
  // The best combination on a CPU with VNNI (Xeon, AVX-512 VNNI): W8A8 alone. ToMe merging
  // 25% after layer 1 attention, the row's second technique on Zen 4, saves a quarter of
  // one FFN but its matching costs as much there (A/B: 4% slower, cos 0.990 vs 0.9995);
  // every pruning point before it costs more than 0.02 of cosine (the pruning rows).
  t.push_back(combined("accelerated", "W8A8 linears (etk::int8_linear on the int8 GEMM)",
                       "issue bar: 3x at cos 0.98 (goal 4x)", PruneRule::none, 1.0, PrunePoint::layer0_attention));
  return t;
}

Technique sentence_technique(const std::string& name) {
  std::string names;
  for (const auto& t : sentence_techniques()) {
    if (t.name == name) return t;
    names += " " + t.name;
  }
  throw std::invalid_argument("unknown technique '" + name + "'; known:" + names);
}

void run_sentence_study(const StudyOptions& opt, std::ostream& out) {
  const std::string dir = model_dir_from_env();
  const UseModel model = load_use_lite(dir + "/model.json");
  const Tokenizer tok = Tokenizer::from_file(dir + "/vocab.json");
  // Each distinct sentence once: copies of a sentence (Reuters repeats boilerplate) tie as
  // neighbours, and rounding alone would then reorder them and move the agreement.
  std::vector<std::string> distinct;
  {
    std::set<std::string> seen;
    for (auto& s : examples::reuters_arff_sentences(examples::reuters_arff_dir_from_env()))
      if (seen.insert(s).second) distinct.push_back(std::move(s));
  }
  const auto retrieval = tokenize(tok, evenly_spaced(distinct, std::size_t(opt.sentences)));
  // r-cran-tm's 70 articles are Reuters-21578 articles that the ARFF files hold too: a
  // calibration sentence with the token ids of a scored sentence is left out.
  const auto calibration_all = tokenize(tok, examples::reuters_sentences(examples::reuters_dir_from_env()));
  const std::set<TokenIds> scored(retrieval.begin(), retrieval.end());
  std::vector<TokenIds> calibration;
  for (const auto& c : calibration_all)
    if (!scored.count(c)) calibration.push_back(c);
  const SpamSplit spam = spam_split(spam_dir_from_env(), opt.spam_per_class);
  std::vector<std::string> train_text, test_text;
  std::vector<int> train_y, test_y;
  for (const auto& m : spam.train) train_text.push_back(m.text), train_y.push_back(m.spam);
  for (const auto& m : spam.test) test_text.push_back(m.text), test_y.push_back(m.spam);
  const auto train_ids = tokenize(tok, train_text), test_ids = tokenize(tok, test_text);
  const std::size_t n = retrieval.size(), e = std::size_t(model.tanh_layer.out);
  if (n <= std::size_t(opt.neighbours)) throw std::invalid_argument("the retrieval set needs more sentences than neighbours");
  std::size_t tokens = 0;
  for (const auto& s : retrieval) tokens += std::min<std::size_t>(s.size(), std::size_t(model.max_tokens));

  struct Embedded {
    std::vector<float> retrieval, test;
    double seconds = 0, kept = 1;
  };
  const auto embed = [&](const Encoder& enc) {
    Embedded r;
    r.retrieval.resize(n * e);
    r.test.resize(test_ids.size() * e);
    std::vector<std::ptrdiff_t> kept;
    r.seconds = 1e300;
    for (int k = 0; k < std::max(1, opt.repeat); ++k) {
      const double t0 = thread_cpu_seconds();
      enc.embed(retrieval, r.retrieval.data(), {}, &kept);
      r.seconds = std::min(r.seconds, thread_cpu_seconds() - t0);
    }
    std::size_t kept_tokens = 0;
    for (auto k : kept) kept_tokens += std::size_t(k);
    r.kept = double(kept_tokens) / double(tokens);
    enc.embed(test_ids, r.test.data());
    return r;
  };

  const Encoder float_encoder(model);
  const Embedded base = embed(float_encoder);
  std::vector<float> train(train_ids.size() * e);
  float_encoder.embed(train_ids, train.data());
  const LogisticProbe probe = LogisticProbe::train(train.data(), train_y, e);
  const double base_spam = probe.accuracy(base.test.data(), test_y);
  const auto reference_nn = nearest_neighbours(base.retrieval.data(), n, e, opt.neighbours);

  char line[1024];
  std::snprintf(line, sizeof line,
                "Universal Sentence Encoder lite: %zu Reuters sentences (ARFF, %.1f tokens each) for cosine and "
                "%d-NN retrieval agreement; spam probe trained on float embeddings of %zu mails, tested on %zu; "
                "calibration on %zu r-cran-tm Reuters sentences (%zu more left out: also scored); "
                "speed = thread CPU time of the retrieval set, 1 thread, best of %d.\n\n",
                n, double(tokens) / double(n), opt.neighbours, train_ids.size(), test_ids.size(), calibration.size(),
                calibration_all.size() - calibration.size(), std::max(1, opt.repeat));
  out << line;
  out << "| technique | tokens kept | effect | mean cos | min cos | 10-NN agreement | spam acc (delta) | sentences/s | "
         "speed-up | setting | paper's claim |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|\n";
  const Calibration cal{model, calibration};
  examples::Chart chart;
  chart.title = "Universal Sentence Encoder lite: 10-NN retrieval agreement with float vs effect (1000 Reuters sentences)";
  chart.y_min = 0, chart.y_max = 1;
  chart.baselines.push_back({"#1f77b4", 1.0});
  std::map<std::string, std::size_t> panel;
  for (const Technique& t : sentence_techniques()) {
    if (!opt.only.empty() && std::find(opt.only.begin(), opt.only.end(), t.name) == opt.only.end() && t.name != "float")
      continue;
    RowRun run{t.options, nullptr, nullptr};
    if (t.setup) t.setup(run, cal);
    const bool is_float = t.name == "float";
    const Encoder enc(run.model ? *run.model : model, run.options);
    const Embedded r = is_float ? base : embed(enc);
    const CosineStats cs = cosine_stats(r.retrieval.data(), base.retrieval.data(), n, e);
    const double agree = is_float ? 1.0 : retrieval_agreement(reference_nn, r.retrieval.data(), n, e);
    const double spam_acc = probe.accuracy(r.test.data(), test_y);
    Effect effect = run.effect ? run.effect() : t.effect;
    if (effect.kind.empty() && run.options.prune != PruneRule::none) effect = {"tokens kept %", 100 * r.kept};
    std::string what = t.what;
    if (run.options.prune == PruneRule::ltp) {
      char th[64];
      std::snprintf(th, sizeof th, " (theta %.4g)", run.options.prune_value);
      what += th;
    }
    char eff[64] = "-";
    if (!effect.kind.empty()) std::snprintf(eff, sizeof eff, "%s %.2f", effect.kind.c_str(), effect.value);
    std::snprintf(line, sizeof line, "| %s | %.1f%% | %s | %.6f | %.6f | %.3f | %.2f%% (%+.2f) | %.0f | %.2fx | %s | %s |\n",
                  t.name.c_str(), 100 * r.kept, eff, cs.mean, cs.min, agree, 100 * spam_acc, 100 * (spam_acc - base_spam),
                  double(n) / r.seconds, base.seconds / r.seconds, what.c_str(), t.claim.c_str());
    out << line << std::flush;
    if (effect.kind.empty()) continue;
    if (!panel.count(t.family)) {
      panel[t.family] = chart.panels.size();
      chart.panels.push_back({t.family, effect.kind, {{"#1f77b4", {}}}});
    }
    chart.panels[panel[t.family]].series[0].points.push_back({effect.value, agree, t.name});
  }
  if (!opt.svg.empty()) {
    std::ofstream svg(opt.svg);
    examples::write_curve_chart(svg, chart);
    if (!svg) throw std::runtime_error("cannot write '" + opt.svg + "'");
  }
  if (!opt.chart_data.empty()) {
    std::ofstream data(opt.chart_data);
    examples::write_chart_data(data, chart);
    if (!data) throw std::runtime_error("cannot write '" + opt.chart_data + "'");
  }
}

}  // namespace sentence
