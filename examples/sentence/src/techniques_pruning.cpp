// techniques_pruning.cpp: the token-reduction rows (encoder.hpp's prune options): top-k at
// each prune point with pruned rows carried to the pool (as they are, or plus the kept
// rows' mean update) or left out of it, LTP with its threshold calibrated for 50% kept
// tokens (etk::calibrate_ltp on the calibration sentences, run exactly, not replayed),
// SaiT coverage, and ToMe merging.
#include <cmath>

#include "etk/pruning/ltp_calibrator.hpp"
#include "techniques.hpp"

namespace sentence {

namespace {

const char* kLtpClaim = "LTP: 1.9x CPU throughput, <1% accuracy drop (BERT, GLUE)";
const char* kSaitClaim = "SaiT: +67-91% throughput, <0.5% accuracy drop (ViTs)";
const char* kTomeClaim = "ToMe: 2x throughput, 0.2-0.3% accuracy drop (ViT-L/H, no training)";

Technique row(const char* family, const std::string& name, const std::string& what, const char* claim, PruneRule rule,
              double value, PrunePoint point = PrunePoint::layer0_attention,
              PrunedPooling pooling = PrunedPooling::carried) {
  Technique t;
  t.family = family, t.name = name, t.what = what, t.claim = claim;
  t.options.prune = rule;
  t.options.prune_value = value;
  t.options.point = point;
  t.options.pooling = pooling;
  return t;
}

// LTP's one threshold (at the single prune point) for a keep ratio. The calibrator's
// schedule has two entries (reach_final): the unpruned input and the prune point.
double calibrate_threshold(EncoderOptions options, double keep_target, const Calibration& cal) {
  etk::LtpCalibratorOptions copt;
  copt.reach_final = true;
  copt.theta_max = 0.1;
  const auto measure = [&](const std::vector<float>& thresholds) {
    options.prune_value = thresholds[1];
    std::vector<std::ptrdiff_t> kept;
    embed_all(cal.model, options, cal.sentences, &kept);
    std::vector<etk::TokenCounts> counts;
    for (std::size_t s = 0; s < cal.sentences.size(); ++s) {
      const std::ptrdiff_t full = std::min<std::ptrdiff_t>(std::ptrdiff_t(cal.sentences[s].size()), cal.model.max_tokens);
      if (full > 0) counts.push_back({{kept[s]}, full});
    }
    return counts;
  };
  return etk::calibrate_ltp(2, {etk::LtpBudgetKind::keep_ratio, keep_target}, measure, copt).theta_final;
}

}  // namespace

void pruning_rows(std::vector<Technique>& t) {
  using PR = PruneRule;
  using PP = PrunePoint;
  t.push_back(row("top-k", "topk50-l0attn-carry", "top-k 50% after layer 0 attention, pruned rows carried to the pool",
                  kLtpClaim, PR::top_k, 0.5));
  t.push_back(row("top-k", "topk50-l0attn-drop", "top-k 50% after layer 0 attention, pruned rows left out of the pool",
                  kLtpClaim, PR::top_k, 0.5, PP::layer0_attention, PrunedPooling::dropped));
  t.push_back(row("top-k", "topk50-l0out-carry", "top-k 50% between the layers (layer-0 outputs carried)", kLtpClaim,
                  PR::top_k, 0.5, PP::layer0_output));
  for (double keep : {0.5, 0.8}) {
    const std::string k = std::to_string(int(std::lround(100 * keep)));
    t.push_back(row("top-k updated", "topk" + k + "-l0attn-upd",
                    "top-k " + k + "% after layer 0 attention, pruned rows carried plus the kept rows' mean update",
                    kLtpClaim, PR::top_k, keep, PP::layer0_attention, PrunedPooling::updated));
  }
  t.push_back(row("top-k updated", "topk50-l1attn-upd",
                  "top-k 50% after layer 1 attention (FFN on kept), pruned rows carried plus the kept rows' mean update",
                  kLtpClaim, PR::top_k, 0.5, PP::layer1_attention, PrunedPooling::updated));
  t.push_back(row("top-k", "topk50-l1attn-carry", "top-k 50% after layer 1 attention (before its FFN and the pool)",
                  kLtpClaim, PR::top_k, 0.5, PP::layer1_attention));
  Technique ltp = row("LTP", "ltp50-l0attn-carry", "LTP threshold (calibrated to 50% kept) after layer 0 attention",
                      kLtpClaim, PR::ltp, 0.0);
  ltp.setup = [](RowRun& run, const Calibration& cal) { run.options.prune_value = calibrate_threshold(run.options, 0.5, cal); };
  t.push_back(ltp);
  t.push_back(row("SaiT", "sait80-l0attn-carry", "SaiT coverage 0.8 of the importance after layer 0 attention", kSaitClaim,
                  PR::coverage, 0.8));
  t.push_back(row("ToMe", "merge50-l0attn", "ToMe merging 50% after layer 0 attention, size-weighted pool", kTomeClaim,
                  PR::merge, 0.5));
  t.push_back(row("ToMe", "merge50-l0out", "ToMe merging 50% between the layers, size-weighted pool", kTomeClaim,
                  PR::merge, 0.5, PP::layer0_output));
  t.push_back(row("ToMe", "merge50-l1attn", "ToMe merging 50% after layer 1 attention (only its FFN is saved)", kTomeClaim,
                  PR::merge, 0.5, PP::layer1_attention));
}

}  // namespace sentence
