// decode_study.hpp: LATTE decoding (etk::latte_decode over an etk::KVCache) on the real
// q/k/v rows of PP-OCRv4's two attention blocks (issue 14, accuracy evidence (a)).
//
// For each scored line and block, the recorded keys and values of all heads are appended
// to a KVCache as one chunk; every query row of the line is then one decode step (one
// query per head, the last position of the cache, so it sees every key, like the
// model's non-causal attention). Per row and head it measures, against the exact float
// attention (reference::attention_probs / reference::dense_attention):
//   * the share of keys latte_decode filtered,
//   * the float softmax mass of the keys it kept (the kept set is the reference twin's,
//     reference::decode_attention; its size is checked against latte_decode's counts),
//   * the relative L2 error of latte_decode's output vs dense_decode over the same cache,
//   * the cache's own error: dense_decode vs float attention,
//   * and, at the same thresholds, the prefill kernel etk::latte_attention over the whole
//     line (per-head key scale instead of per-block): its filtered share and error.
// Thresholds are per block and head, from etk::latte_calibrate_keep_ratio (a share to
// filter) or etk::latte_calibrate_error_budget (a mean mass to drop) on held-out
// calibration lines (Study::calibration_lines, never scored), or given shared values.
// What this shows and does not show: docs/accuracy.md.
#pragma once

#include <etk/attention/kv_cache.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "study.hpp"

namespace ocr {

struct DecodeStudyOptions {
  // Shares of keys to filter, each calibrated per block and head (keep ratio 1 - share).
  std::vector<double> filtered_targets = {0.75, 0.90, 0.95};
  // Mean dropped softmax masses, each calibrated per block and head
  // (latte_calibrate_error_budget): how much LATTE filters at a given mass loss.
  std::vector<double> mass_budgets;
  // Thresholds (logit units, shared by every head; +inf keeps every key) used as given.
  std::vector<float> thetas;
  int short_lines = 16, long_lines = 4;  // scored lines per set (the set's first ones)
  int short_calib = 16, long_calib = 8;  // calibration lines per set
  bool long_set = true;
  etk::KVValueType values = etk::KVValueType::fp16;
};

// One setting on one set, averaged over (query row, head) pairs of every block and line.
struct DecodeStudyRow {
  Set set = Set::Short;
  std::string setting;
  double filtered = 0;           // share of keys latte_decode filtered
  double kept_mass = 0;          // mean float softmax mass of the kept keys
  double min_kept_mass = 1;      // its minimum over rows
  double err_vs_dense = 0;       // mean ||latte_decode - dense_decode|| / ||dense_decode||
  double err_vs_float = 0;       // mean ||latte_decode - float|| / ||float||
  double norm_ratio = 0;         // mean ||latte_decode|| / ||dense_decode||
  double cache_error = 0;        // mean ||dense_decode - float|| / ||float||
  double prefill_filtered = 0;   // etk::latte_attention's share filtered, same thresholds
  double prefill_err_vs_float = 0;
  std::int64_t count_mismatches = 0;  // rows where latte_decode's kept count != reference's
  std::int64_t rows = 0;              // (query row, head) pairs
  int lines = 0, tokens = 0;          // scored lines, tokens per line
};

std::vector<DecodeStudyRow> decode_study(Study& study, const DecodeStudyOptions& opts);

// The rows as a Markdown table.
void print_decode_study(const std::vector<DecodeStudyRow>& rows, std::FILE* out);

// `ocr_tool decode-study [--lines N] [--long-lines N] [--calib N] [--long-calib N]
// [--theta T]... [--mass-budget E]... [--values fp32|fp16|bf16|int8] [--no-targets]
// [--no-long] [data options]`: argv[0] is
// "decode-study". Prints the table; returns the exit status.
int decode_study_command(int argc, char** argv);

}  // namespace ocr
