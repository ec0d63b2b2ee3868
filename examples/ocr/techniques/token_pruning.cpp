// Token pruning rows of the real-model report: LTP thresholds (fixed, and a schedule
// found by etk::calibrate_ltp), SaiT adaptive coverage and the fixed keep-rate top-k
// baseline, all through one etk::PruningPolicy switched per row on the same weights.
//
// The prune hook scores every token with etk::token_importance (the attention it
// receives, averaged over the 8 heads and the queries) and selects with the policy. The
// runner then runs the MLP (and block 2, when block 1 prunes) on the kept tokens only and
// scatters the pruned ones back, frozen, for the CTC head. Fixed LTP thresholds are given
// relative to the mean score: theta = c / T (a block's scores sum to 1 over T tokens).
// Effect: tokens left after the last block's pruning, % of the line's tokens.
#include <etk/pruning/adaptive.hpp>
#include <etk/pruning/ltp.hpp>
#include <etk/pruning/ltp_calibrator.hpp>
#include <etk/pruning/policy.hpp>
#include <etk/pruning/token_importance.hpp>

#include <memory>
#include <numeric>

#include "study.hpp"

namespace {

// Per line: the tokens after each block's pruning, and the line's length.
using Counts = std::vector<etk::TokenCounts>;

ocr::PruneFn prune_hook(etk::PruningPolicy policy, bool relative, std::shared_ptr<Counts> counts) {
  return [policy, relative, counts](int block, const float* probs, int heads, int T, const float*, int) {
    if (block == 0) counts->push_back({{}, T});
    std::vector<int> out;
    if (probs) {
      const Eigen::VectorXf s = etk::token_importance(etk::HeadsView<const float>(probs, heads, T, T));
      etk::PruningPolicy p = policy;
      if (relative)
        for (float& t : p.thresholds) t /= float(T);
      etk::KeepSet keep;
      p.select(s, block, keep);
      out.assign(keep.begin(), keep.end());
    } else {
      out.resize(static_cast<std::size_t>(T));
      std::iota(out.begin(), out.end(), 0);
    }
    counts->back().per_layer.push_back(static_cast<std::ptrdiff_t>(out.size()));
    return out;
  };
}

ocr::Effect kept_effect(const Counts& counts) {
  double kept = 0, total = 0;
  for (const auto& c : counts) {
    kept += c.per_layer.empty() ? double(c.full) : double(c.per_layer.back());
    total += double(c.full);
  }
  return ocr::Effect{"tokens kept %", 100.0 * kept / std::max(1.0, total)};
}

void use_policy(ocr::Run& run, const etk::PruningPolicy& policy, bool relative) {
  auto counts = std::make_shared<Counts>();
  run.hooks.prune = prune_hook(policy, relative, counts);
  run.effect = [counts] { return kept_effect(*counts); };
}

void add_row(ocr::Study& study, const std::string& technique, const std::string& setting, ocr::Set set,
             const etk::PruningPolicy& policy) {
  study.add(technique, setting, set, [policy](ocr::Run& run) { use_policy(run, policy, true); });
}

etk::PruningPolicy policy(etk::PruneMode mode, double amount, std::vector<int> blocks,
                          std::vector<float> thresholds = {}) {
  etk::PruningPolicy p;
  p.mode = mode;
  p.keep_rate = mode == etk::PruneMode::top_k ? amount : 1.0;
  p.fraction = mode == etk::PruneMode::coverage ? amount : 1.0;
  p.layers = std::move(blocks);
  p.thresholds = std::move(thresholds);
  return p;
}

}  // namespace

ETK_OCR_TECHNIQUE(token_pruning, 20) {
  using ocr::Set;
  using etk::PruneMode;
  const std::vector<int> b2 = {1}, both = {0, 1};
  for (Set set : {Set::Long, Set::Short}) {
    for (double r : {0.75, 0.5, 0.3})
      add_row(study, "prune top-k", "block 2, keep " + ocr::fmt(r), set, policy(PruneMode::top_k, r, b2));
    add_row(study, "prune top-k", "blocks 1+2, keep 0.7", set, policy(PruneMode::top_k, 0.7, both));
    for (double f : {0.95, 0.9, 0.8})
      add_row(study, "prune SaiT adaptive", "block 2, cover " + ocr::fmt(f), set, policy(PruneMode::coverage, f, b2));
    add_row(study, "prune SaiT adaptive", "blocks 1+2, cover 0.95", set, policy(PruneMode::coverage, 0.95, both));
    for (float c : {0.5f, 1.0f})
      add_row(study, "prune LTP", "block 2, theta " + ocr::fmt(c) + "/T", set,
              policy(PruneMode::ltp_threshold, 1, {}, {0.0f, c}));
    add_row(study, "prune LTP", "blocks 1+2, theta 0.3/T, 0.8/T", set,
            policy(PruneMode::ltp_threshold, 1, {}, {0.3f, 0.8f}));
  }
  // Thresholds from the calibrator: LTP's linear schedule (block 1: 0, block 2:
  // theta_final) whose keep ratio averaged over the two blocks is 0.75 on 12 held-out
  // long lines (Study::calibration_lines), i.e. about half the tokens through block 2's MLP.
  study.add("prune LTP", "calibrated: 50% kept in block 2", Set::Long, [&study](ocr::Run& run) {
    const int blocks = int(study.model().blocks.size());
    const std::vector<int> calib = study.calibration_lines(Set::Long, 12);
    auto measure = [&study, &calib](const std::vector<float>& th) {
      ocr::Run probe;
      auto counts = std::make_shared<Counts>();
      probe.hooks.prune = prune_hook(policy(etk::PruneMode::ltp_threshold, 1, {}, th), false, counts);
      study.forward(probe, ocr::Set::Long, calib);
      return *counts;
    };
    etk::LtpCalibratorOptions opt;
    opt.reach_final = true;
    opt.theta_max = 0.02;
    opt.tolerance = 0.005;
    const etk::LtpCalibration cal = etk::calibrate_ltp(blocks, {etk::LtpBudgetKind::keep_ratio, 0.75}, measure, opt);
    use_policy(run, policy(etk::PruneMode::ltp_threshold, 1, {}, cal.thresholds), false);
  });
  using Q = ocr::Quantity;
  study.paper_claim("LTP",
                    "up to 2.1x fewer FLOPs, 1.9x throughput on a Haswell CPU at under 1% accuracy drop; ~2% more "
                    "accurate than top-k at equal FLOPs (GLUE)",
                    {{"prune LTP", "calibrated: 50% kept in block 2", Set::Long, {Q::Effect, Q::CharChange, Q::LineChange}},
                     {"prune top-k", "block 2, keep 0.5", Set::Long, {Q::Effect, Q::CharChange, Q::LineChange}},
                     {"prune LTP", "block 2, theta 1/T", Set::Short, {Q::Effect, Q::CharChange}}});
  study.paper_claim("SaiT", "39-43% fewer FLOPs, 67-91% higher throughput at under 0.5% accuracy loss (ViTs); no sparsification, no loss",
                    {{"prune SaiT adaptive", "block 2, cover 0.8", Set::Long, {Q::Effect, Q::CharChange}},
                     {"prune SaiT adaptive", "blocks 1+2, cover 0.95", Set::Long, {Q::Effect, Q::CharChange}},
                     {"prune SaiT adaptive", "blocks 1+2, cover 0.95", Set::Short, {Q::Effect, Q::CharChange}}});
}
