// etk/pruning/policy.hpp: one token-pruning policy switched at run time over every mode
// etk has on the same weights: dense, LTP threshold (ltp.hpp), top_k and coverage
// (adaptive.hpp). An engine holds one PruningPolicy and calls select() per layer.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "etk/config.hpp"
#include "etk/pruning/adaptive.hpp"
#include "etk/pruning/ltp.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE

enum class PruneMode { dense, ltp_threshold, top_k, coverage };

// One policy object switched at run time (same weights, any density). select() writes
// the ascending kept indices and returns true iff some token was dropped, so a caller can
// skip compaction when nothing changes (dense mode, rate 1, fraction 1, threshold 0).
struct PruningPolicy {
  PruneMode mode = PruneMode::dense;
  std::vector<float> thresholds;  // ltp_threshold: one per layer (>= 0)
  double keep_rate = 1.0;         // top_k: in (0, 1]
  double fraction = 1.0;          // coverage: in (0, 1]
  std::vector<int> layers;        // top_k / coverage prune only at these layers (empty: all)
  LtpHardOptions options;         // protected indices, all-dropped policy, LTP floor

  template <typename Derived>
  bool select(const Eigen::MatrixBase<Derived>& scores, int layer, KeepSet& keep) const {
    const bool here = layers.empty() || std::find(layers.begin(), layers.end(), layer) != layers.end();
    switch (mode) {
      case PruneMode::ltp_threshold:
        ETK_CHECK(layer >= 0 && layer < static_cast<int>(thresholds.size()),
                  "argument 'layer' is " << layer << " but the policy has " << thresholds.size()
                                         << " thresholds");
        ltp_keep(scores, thresholds[static_cast<std::size_t>(layer)], keep, options);
        break;
      case PruneMode::top_k:
        if (here) keep_top_k(scores, keep_rate, keep, options.selection);
        else keep = all_kept(scores.size());
        break;
      case PruneMode::coverage:
        if (here) keep_coverage(scores, fraction, keep, options.selection);
        else keep = all_kept(scores.size());
        break;
      case PruneMode::dense:
      default:
        keep = all_kept(scores.size());
        break;
    }
    return static_cast<Eigen::Index>(keep.size()) < scores.size();
  }
};

ETK_END_NAMESPACE
