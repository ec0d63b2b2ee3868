// techniques.hpp: how a technique adds rows to the sentence-encoder report (study.hpp),
// the sentence counterpart of examples/ocr's technique interface (TECHNIQUES.md there).
//
// A row is a Technique: its family (the table's grouping and the chart's panel), a unique
// name, a description, the paper's claim, and either fixed EncoderOptions or a setup that
// runs when the row is evaluated. The setup may calibrate, on Calibration::sentences only
// (the r-cran-tm Reuters sentences, never scored), and fills a RowRun: the encoder's options
// (hooks included, encoder.hpp), optionally a transformed copy of the model (weight rows),
// and the row's effect (the chart's x axis), read after the row has run.
//
// Each family of rows lives in a file of its own (techniques_<family>.cpp) and is listed
// once in sentence_techniques() (study.cpp). A new family (e.g. mixed-precision weights)
// adds a file with a `void <family>_rows(std::vector<Technique>&)` declared below and one
// line in that list.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "encoder.hpp"

namespace sentence {

// The chart's x axis and the table's "effect" column: kind is one of "tokens kept %",
// "keys filtered %", "bits per value", "LUT segments" (empty: no effect).
struct Effect {
  std::string kind;
  double value = 0;
};

// What a row may calibrate on.
struct Calibration {
  const UseModel& model;
  const std::vector<TokenIds>& sentences;  // held out from every scored set
};

struct RowRun {
  EncoderOptions options;
  std::shared_ptr<const UseModel> model;  // null: the loaded model
  std::function<Effect()> effect;         // null: no effect
};

struct Technique {
  std::string family, name, what, claim;
  EncoderOptions options;                                  // the row's options before its setup
  Effect effect;                                           // when the setup leaves run.effect empty
  std::function<void(RowRun&, const Calibration&)> setup;  // calibrated rows (may be empty)
};

// The row families, in report order.
void pruning_rows(std::vector<Technique>& rows);      // top-k, LTP, SaiT, ToMe
void latte_rows(std::vector<Technique>& rows);        // LATTE calibrated and trained
void quant_rows(std::vector<Technique>& rows);        // W8A8, uniform / PWLQ weights, two-scaled post-softmax
void gqa_lut_rows(std::vector<Technique>& rows);      // GQA-LUT exp / rsqrt / tanh
void compression_rows(std::vector<Technique>& rows);  // activation compression
void mixed_precision_rows(std::vector<Technique>& rows);  // mixed-precision weights (etk/search)

// ---- helpers the families share ----------------------------------------------------------

// The embeddings [sentences, 512] of `sentences` under `options` (one thread).
std::vector<float> embed_all(const UseModel& model, const EncoderOptions& options,
                             const std::vector<TokenIds>& sentences, std::vector<std::ptrdiff_t>* kept = nullptr);

// Attention as dense_attention computes it, with two hook points: `exp` replaces the
// exponential of the max-shifted scores (inputs <= 0), `probs` edits each head's
// probabilities [tokens, tokens] in place before they multiply v. Either may be empty.
void attention_with(const AttentionCall& c, const InPlaceFn& exp,
                    const std::function<void(int layer, float* probs, std::ptrdiff_t rows, std::ptrdiff_t cols)>& probs);

// A contiguous copy of one sentence's q, k, v in a layer (LATTE's calibration samples).
struct RecordedAttention {
  int layer = 0;
  std::ptrdiff_t heads = 0, tokens = 0, dim = 0;
  std::vector<float> q, k, v;  // [heads, tokens, dim]
};
// Runs the float model over the calibration sentences and records every attention call.
std::vector<RecordedAttention> record_attention(const Calibration& cal);

// Every layer-norm output site's rows [rows, cols] over the calibration sentences (site
// numbering as EncoderHooks::layer_norm_output), at most max_rows rows per site.
std::vector<std::vector<float>> record_layer_norm_outputs(const Calibration& cal, std::ptrdiff_t max_rows);

}  // namespace sentence
