// techniques_latte.cpp: LATTE rows: both layers' attention replaced by etk::latte_attention
// (int8 estimate filter, exact int8 scores for the survivors), per-layer, per-head
// thresholds (a) calibrated for keep ratios 50 / 25 / 10% (latte_calibrate_keep_ratio) and
// (b) trained (latte_train_thresholds, lambda 0.5 / 2 / 8), both on the q, k, v of the
// first kSentences calibration sentences (recorded once, shared by the rows). Effect: the
// share of keys filtered over both layers.
#include <atomic>
#include <cstdio>

#include "etk/attention/latte.hpp"
#include "etk/attention/latte_threshold.hpp"
#include "techniques.hpp"

namespace sentence {

namespace {

constexpr std::size_t kSentences = 48;
const char* kClaim = "LATTE: up to 85.16% of keys filtered at a 0.87% accuracy drop (CV); 89.91% at +0.86 perplexity (NLP)";

struct Recording {
  std::once_flag once;
  std::vector<RecordedAttention> calls;
  const std::vector<RecordedAttention>& get(const Calibration& cal) {
    std::call_once(once, [&] {
      const std::vector<TokenIds> first(cal.sentences.begin(),
                                        cal.sentences.begin() + std::ptrdiff_t(std::min(kSentences, cal.sentences.size())));
      calls = record_attention(Calibration{cal.model, first});
    });
    return calls;
  }
};

std::vector<etk::LatteSample> samples(const std::vector<RecordedAttention>& calls, int layer) {
  std::vector<etk::LatteSample> s;
  for (const auto& c : calls)
    if (c.layer == layer && c.tokens > 0)
      s.push_back({{c.q.data(), c.heads, c.tokens, c.dim}, {c.k.data(), c.heads, c.tokens, c.dim}, {c.v.data(), c.heads, c.tokens, c.dim}});
  return s;
}

etk::LatteParams base() {
  etk::LatteParams p;
  p.attention.scale = 1.0f;  // q is already scaled
  return p;
}

// The row's attention: LATTE with theta[layer] (per head), counting keys.
void use_latte(RowRun& run, std::vector<std::vector<float>> theta) {
  struct Counts {
    std::atomic<std::int64_t> considered{0}, kept{0};
  };
  auto counts = std::make_shared<Counts>();
  auto th = std::make_shared<const std::vector<std::vector<float>>>(std::move(theta));
  run.options.hooks.attention = [th, counts](const AttentionCall& c) {
    etk::LatteParams p = base();
    p.theta = (*th)[std::size_t(c.layer)];
    etk::LatteStats st;
    etk::latte_attention(c.q, c.k, c.v, c.o, p, &st);
    for (std::size_t h = 0; h < st.considered.size(); ++h) counts->considered += st.considered[h], counts->kept += st.kept[h];
  };
  run.effect = [counts] {
    const double c = double(counts->considered.load());
    return Effect{"keys filtered %", c > 0 ? 100.0 * (c - double(counts->kept.load())) / c : 0.0};
  };
}

}  // namespace

void latte_rows(std::vector<Technique>& t) {
  auto rec = std::make_shared<Recording>();
  for (int keep : {50, 25, 10}) {
    Technique r;
    r.family = "LATTE";
    r.name = "latte-keep" + std::to_string(keep);
    r.what = "LATTE thresholds calibrated to keep " + std::to_string(keep) + "% of keys per head";
    r.claim = kClaim;
    r.setup = [rec, keep](RowRun& run, const Calibration& cal) {
      const auto& calls = rec->get(cal);
      std::vector<std::vector<float>> theta;
      for (int layer = 0; layer < 2; ++layer)
        theta.push_back(etk::latte_calibrate_keep_ratio(samples(calls, layer), base(), keep / 100.0));
      use_latte(run, std::move(theta));
    };
    t.push_back(r);
  }
  for (double lambda : {0.5, 2.0, 8.0}) {
    Technique r;
    r.family = "LATTE";
    char name[32];
    std::snprintf(name, sizeof name, "latte-trained%g", lambda);
    r.name = name;
    r.what = std::string("LATTE thresholds trained (latte_train_thresholds), lambda ") + (name + 13);
    r.claim = kClaim;
    r.setup = [rec, lambda](RowRun& run, const Calibration& cal) {
      const auto& calls = rec->get(cal);
      etk::LatteTrainOptions opt;
      opt.lambda = lambda;
      opt.steps = 40;
      std::vector<std::vector<float>> theta;
      for (int layer = 0; layer < 2; ++layer) theta.push_back(etk::latte_train_thresholds(samples(calls, layer), base(), opt).theta);
      use_latte(run, std::move(theta));
    };
    t.push_back(r);
  }
}

}  // namespace sentence
