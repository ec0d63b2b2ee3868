// study.cpp: see study.hpp.
#include "study.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <stdexcept>

#include "etk/pruning/ltp_calibrator.hpp"
#include "paths.hpp"
#include "quality.hpp"
#include "reuters.hpp"
#include "reuters_arff.hpp"
#include "spam.hpp"
#include "tokenizer.hpp"

namespace sentence {

namespace {

Technique make(const std::string& name, const std::string& what, const std::string& claim, LinearKind linears,
               PruneRule rule = PruneRule::none, double value = 1.0, PrunePoint point = PrunePoint::layer0_attention,
               PrunedPooling pooling = PrunedPooling::carried) {
  Technique t;
  t.name = name;
  t.what = what;
  t.claim = claim;
  t.options.linears = linears;
  t.options.prune = rule;
  t.options.prune_value = value;
  t.options.point = point;
  t.options.pooling = pooling;
  return t;
}

const char* kLtpClaim = "LTP: 1.9x CPU throughput, <1% accuracy drop (BERT, GLUE)";
const char* kSaitClaim = "SaiT: +67-91% throughput, <0.5% accuracy drop (ViTs)";

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

// LTP's one threshold (at the single prune point) for a keep ratio, by etk's calibrator on
// the calibration sentences, run exactly (not replayed). The schedule has two entries
// (reach_final): the unpruned input and the prune point, whose threshold is used.
double calibrate_threshold(const UseModel& model, EncoderOptions options, double keep_target,
                           const std::vector<TokenIds>& calibration) {
  etk::LtpCalibratorOptions copt;
  copt.reach_final = true;
  copt.theta_max = 0.1;
  const auto measure = [&](const std::vector<float>& thresholds) {
    options.prune_value = thresholds[1];
    const Encoder enc(model, options);
    std::vector<float> out(calibration.size() * std::size_t(enc.embedding_dim()));
    std::vector<std::ptrdiff_t> kept;
    enc.embed(calibration, out.data(), {}, &kept);
    std::vector<etk::TokenCounts> counts;
    for (std::size_t s = 0; s < calibration.size(); ++s) {
      const std::ptrdiff_t full = std::min<std::ptrdiff_t>(std::ptrdiff_t(calibration[s].size()), model.max_tokens);
      if (full > 0) counts.push_back({{kept[s]}, full});
    }
    return counts;
  };
  return etk::calibrate_ltp(2, {etk::LtpBudgetKind::keep_ratio, keep_target}, measure, copt).theta_final;
}

}  // namespace

std::vector<Technique> sentence_techniques() {
  using LK = LinearKind;
  using PR = PruneRule;
  using PP = PrunePoint;
  std::vector<Technique> t;
  t.push_back(make("float", "float runner (Eigen linears, etk::dense_attention)", "", LK::float32));
  t.push_back(make("topk50-l0attn-carry", "top-k 50% after layer 0 attention, pruned rows carried to the pool",
                   kLtpClaim, LK::float32, PR::top_k, 0.5));
  t.push_back(make("topk50-l0attn-drop", "top-k 50% after layer 0 attention, pruned rows left out of the pool",
                   kLtpClaim, LK::float32, PR::top_k, 0.5, PP::layer0_attention, PrunedPooling::dropped));
  t.push_back(make("topk50-l0out-carry", "top-k 50% between the layers (layer-0 outputs carried)", kLtpClaim,
                   LK::float32, PR::top_k, 0.5, PP::layer0_output));
  t.push_back(make("topk50-l1attn-carry", "top-k 50% after layer 1 attention (before its FFN and the pool)",
                   kLtpClaim, LK::float32, PR::top_k, 0.5, PP::layer1_attention));
  Technique ltp = make("ltp50-l0attn-carry", "LTP threshold (calibrated to 50% kept) after layer 0 attention",
                       kLtpClaim, LK::float32, PR::ltp, 0.0);
  ltp.calibrate_ltp = true;
  t.push_back(ltp);
  t.push_back(make("sait80-l0attn-carry", "SaiT coverage 0.8 of the importance after layer 0 attention", kSaitClaim,
                   LK::float32, PR::coverage, 0.8));
  const char* kTomeClaim = "ToMe: 2x throughput, 0.2-0.3% accuracy drop (ViT-L/H, no training)";
  t.push_back(make("merge50-l0attn", "ToMe merging 50% after layer 0 attention, size-weighted pool", kTomeClaim,
                   LK::float32, PR::merge, 0.5));
  t.push_back(make("merge50-l0out", "ToMe merging 50% between the layers, size-weighted pool", kTomeClaim,
                   LK::float32, PR::merge, 0.5, PP::layer0_output));
  t.push_back(make("merge50-l1attn", "ToMe merging 50% after layer 1 attention (only its FFN is saved)", kTomeClaim,
                   LK::float32, PR::merge, 0.5, PP::layer1_attention));
  t.push_back(make("w8a8", "W8A8 linears: etk::int8_linear, per-channel s8 weights, per-row s8 activations",
                   "", LK::w8a8));
  t.push_back(make("w8a8-topk50", "W8A8 + top-k 50% after layer 0 attention, carried", "", LK::w8a8, PR::top_k, 0.5));
  t.push_back(make("accelerated", "W8A8 + ToMe merging 25% after layer 1 attention", "issue bar: 3x at cos 0.98 (goal 4x)",
                   LK::w8a8, PR::merge, 0.25, PP::layer1_attention));
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
  const auto retrieval = tokenize(tok, evenly_spaced(examples::reuters_arff_sentences(examples::reuters_arff_dir_from_env()),
                                                     std::size_t(opt.sentences)));
  const auto calibration = tokenize(tok, examples::reuters_sentences(examples::reuters_dir_from_env()));
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
                "speed = thread CPU time of the retrieval set, 1 thread, best of %d.\n\n",
                n, double(tokens) / double(n), opt.neighbours, train_ids.size(), test_ids.size(), std::max(1, opt.repeat));
  out << line;
  out << "| technique | tokens kept | mean cos | min cos | 10-NN agreement | spam acc (delta) | sentences/s | speed-up | "
         "setting | paper's claim |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  for (Technique t : sentence_techniques()) {
    if (!opt.only.empty() && std::find(opt.only.begin(), opt.only.end(), t.name) == opt.only.end() && t.name != "float")
      continue;
    if (t.calibrate_ltp) t.options.prune_value = calibrate_threshold(model, t.options, t.keep_target, calibration);
    const bool is_float = t.name == "float";
    const Encoder enc(model, t.options);
    const Embedded r = is_float ? base : embed(enc);
    const CosineStats cs = cosine_stats(r.retrieval.data(), base.retrieval.data(), n, e);
    const double agree = is_float ? 1.0 : retrieval_agreement(reference_nn, r.retrieval.data(), n, e);
    const double spam_acc = probe.accuracy(r.test.data(), test_y);
    std::string what = t.what;
    if (t.calibrate_ltp) {
      char th[64];
      std::snprintf(th, sizeof th, " (theta %.4g)", t.options.prune_value);
      what += th;
    }
    std::snprintf(line, sizeof line, "| %s | %.1f%% | %.6f | %.6f | %.3f | %.2f%% (%+.2f) | %.0f | %.2fx | %s | %s |\n",
                  t.name.c_str(), 100 * r.kept, cs.mean, cs.min, agree, 100 * spam_acc, 100 * (spam_acc - base_spam),
                  double(n) / r.seconds, base.seconds / r.seconds, what.c_str(), t.claim.c_str());
    out << line << std::flush;
  }
}

}  // namespace sentence
