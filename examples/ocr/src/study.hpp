// study.hpp: the report's engine and THE interface through which techniques add rows.
//
// A technique is one file examples/ocr/techniques/<name>.cpp (globbed by CMake) with
//
//   ETK_OCR_TECHNIQUE(my_technique, 40) {          // name, order in the table
//     for (float t : {0.01f, 0.05f})
//       study.add("my technique", "t=" + ocr::fmt(t), ocr::Set::Short, [t](ocr::Run& run) {
//         auto kept = std::make_shared<double>(0);
//         run.hooks.attention = [t, kept](const ocr::AttentionCall& c) { ... };
//         run.effect = [kept] { return ocr::Effect{"keys filtered %", *kept}; };
//       });
//   }
//
// The body runs once at start-up and declares rows; each row's setup function runs when
// the row is evaluated (so state lives in the Run: capture shared_ptrs, not locals).
// Rows whose hooks leave the backbone alone (see Hooks::uses_backbone) start from the
// cached backbone output of every line. Rows are evaluated on StudyOptions::jobs threads,
// one row per thread at a time; setups run one at a time, hooks concurrently: a row's
// hooks must only touch state of their own Run or read-only shared data (Study::forward
// and Study's accessors may be called from any row). Study::forward gives the probabilities of any
// configuration on any lines (calibration, sensitivity search). Calibrate on
// Study::calibration_lines(set, n): held-out lines of the same text, rendered the same
// way, never scored. A technique may also declare its paper's headline claims and the
// rows that give our figures (Study::paper_claim); the report prints them beside each
// other. See TECHNIQUES.md.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "ctc.hpp"
#include "dataset.hpp"
#include "hooks.hpp"
#include "model.hpp"

namespace ocr {

// Short and Long: Reuters lines (or --text) in the report's fonts. Check: lines of another
// text in other fonts (StudyOptions::check), on which the rows of the quantizer techniques
// are scored again with the calibration of the short set: data unlike what they fitted.
enum class Set { Short, Long, Check };
const char* set_name(Set s);

// What a row changes, for the "effect" column and the chart's x axis.
struct Effect {
  std::string kind;  // "keys filtered %", "tokens kept %", "bits per value", "LUT segments", ...
  double value = 0;
};

// One evaluated configuration, filled by a row's setup function.
struct Run {
  Hooks hooks;
  std::function<Effect()> effect;  // read after the run (stats gathered by the hooks)
  // A model with other weights (e.g. Study::model().with_weights(fn)); hooks.weights does
  // the same without building it yourself. nullptr = the float model.
  std::shared_ptr<const Model> model;
};

struct RowResult {
  std::string technique, setting;
  Set set = Set::Short;
  Effect effect;
  double char_acc = 0, line_acc = 0;  // fractions
  double delta_char = 0;              // char_acc - float char_acc (same set)
  double delta_line = 0;              // line_acc - float line_acc (same set)
  double time_vs_float = 0;           // ms_per_line / the float model's (same set)
  double mean_kl = 0;                 // mean over lines and steps of KL(float || row)
  double ms_per_line = 0;
  double agreement = -1;              // vs the reference runtime's strings (float rows), or -1
  bool cached = false;                // started from the cached backbone
};

// What a paper claim's figure shows of its row.
enum class Quantity {
  CharAcc,      // "99.85% chars"
  CharChange,   // "-0.13 pp chars" (vs the float row of the same set)
  LineChange,   // "-2.00 pp exact lines"
  Effect,       // the effect column: "84.09% keys filtered", "50.9% tokens kept", "5 bits per value"
  TimeVsFloat,  // "0.56x float time" (ms/line vs the float row of the same set)
  KL,           // "KL 1.58e-05"
};

// One figure of ours for a paper's claim: a row (technique, setting and set exactly as
// given to Study::add) and what to show of it.
struct ClaimFigure {
  std::string technique, setting;
  Set set = Set::Short;
  std::vector<Quantity> show;
  std::string label;  // optional; default "technique, setting (set)"
};

// A paper's headline claim (as the paper states it) and the rows that give our figures.
struct PaperClaim {
  std::string paper, claim;
  std::vector<ClaimFigure> figures;
};

// The check set's defaults: 200 lines of the GPL-3 text every Debian system ships
// (base-files, /usr/share/common-licenses/GPL-3) rendered alternately in Liberation Sans
// (fonts-liberation2) and FreeSerif (fonts-freefont-ttf).
DataOptions default_check_options();

struct StudyOptions {
  DataOptions data;          // the short set (width 320 by default)
  int long_lines = 60;       // the long set: lines of up to long_chars at long_width
  int long_width = 1280;
  int long_chars = 56;
  int calib_lines = 64;       // calibration pool of the short set (held out, never scored)
  int long_calib_lines = 16;  // calibration pool of the long set
  // Validation pool (held out from the scored lines AND from the calibration pool): lines
  // a search scores its candidates on, so that what fitted a model is not what selects it.
  int valid_lines = 32;       // short set
  int long_valid_lines = 0;   // long set (none by default)
  std::string reference_strings;  // the reference runtime's strings for the short set
  std::vector<std::string> only;  // technique names to run (empty = all)
  // The check set (lines <= 0 switches it off): width and wrap of the short set, another
  // text and other fonts (defaults: default_check_options()). Every short-set row of a
  // technique named in check_techniques is scored on it too, with the same setup.
  DataOptions check = default_check_options();
  std::vector<std::string> check_techniques = {"dense_float", "quant", "int8_gemm", "int8_gemm_variants", "mixed_precision"};
  bool progress = true;
  int jobs = 2;                   // rows evaluated in parallel (each row on one thread)
};

class Study {
 public:
  Study(const Model& model, const Dictionary& dict, StudyOptions opts);

  // ---- for techniques --------------------------------------------------------------
  using Setup = std::function<void(Run&)>;
  void add(const std::string& technique, const std::string& setting, Set set, Setup setup);
  const Model& model() const { return *model_; }
  const Dataset& data(Set s);
  // Line indices of a set: 0 .. data(s).size()-1 are the scored lines; the calibration
  // pool follows (calibration_data(s), never scored), then the validation pool
  // (validation_data(s)). forward, image and float_probs take all three.
  // n held-out lines for calibration, evenly spaced over the set's pool (always the same
  // lines for the same n). Throws if n < 1 or n exceeds the pool.
  std::vector<int> calibration_lines(Set s, int n);
  const Dataset& calibration_data(Set s);
  // n held-out validation lines, evenly spaced over the set's validation pool: indices
  // after the calibration pool (data(s).size() + calibration_data(s).size() + k). Their
  // texts are neither scored nor calibration texts, from the same held-out articles.
  // Throws if n < 1 or n exceeds the pool (--valid-lines / --long-valid-lines).
  std::vector<int> validation_lines(Set s, int n);
  const Dataset& validation_data(Set s);
  // The preprocessed image ([3, 48, width]) of a line index of the set, as above.
  const float* image(Set s, int line);
  // Output probabilities of a configuration on the given lines of a set (all scored
  // lines if empty).
  std::vector<Probs> forward(const Run& run, Set s, const std::vector<int>& lines = {});
  // The float model's probabilities of every line of a set: the scored lines, then the
  // calibration pool (the index space of forward).
  const std::vector<Probs>& float_probs(Set s);
  // Declares a paper's headline claim and the rows of this technique that give our
  // figures (checked when the bodies have run: every figure must name a declared row).
  // Figures whose row is not run (the long or check set switched off, a technique not in
  // StudyOptions::check_techniques: check-set figures need no declared row) are left out of the table,
  // and so is a claim with none. The same paper and claim from several files is one
  // claim with the figures of each.
  void paper_claim(const std::string& paper, const std::string& claim, std::vector<ClaimFigure> figures);
  const std::vector<PaperClaim>& paper_claims() const { return claims_; }
  // Mean KL(p || q) over steps (q floored at 1e-12). A search comparing many q with one p
  // passes neg_entropy(p) (mean over steps of sum p log p) once computed: half the logs.
  static double kl(const Probs& p, const Probs& q);
  static double kl(const Probs& p, const Probs& q, double p_neg_entropy);
  static double neg_entropy(const Probs& p);
  std::string decode(const Probs& p) const;

  // ---- for the report driver -------------------------------------------------------
  void declare_all();                   // runs every registered technique's body
  std::vector<RowResult> evaluate_all();
  const StudyOptions& options() const { return opts_; }
  size_t rows_declared() const { return rows_.size(); }

 private:
  struct Row {
    std::string technique, setting;
    Set set;
    Setup setup;
  };
  struct SetState {
    bool ready = false;
    Dataset data, calib, valid;          // scored lines; calibration pool; validation pool
    std::vector<BackboneCache> cache;   // scored lines, then the pools
    std::vector<Probs> probs;           // scored lines, then the pools
    std::vector<std::string> strings;
    double ms_full = 0, ms_backbone = 0;  // float model, mean per line
    size_t lines() const { return data.size() + calib.size() + valid.size(); }
    // Line i of the index space: a scored line, then the calibration pool, then validation.
    const float* image(size_t i) const {
      if (i < data.size()) return data.images[i].data();
      i -= data.size();
      return i < calib.size() ? calib.images[i].data() : valid.images.at(i - calib.size()).data();
    }
  };
  SetState& state(Set s);
  DataOptions set_options(Set s) const;
  size_t float_pass_lines(Set s) const;
  void prepare(Set s);
  RowResult evaluate(const Row& row);
  void progress(size_t done_lines, const std::string& what);

  const Model* model_;
  const Dictionary* dict_;
  StudyOptions opts_;
  std::vector<Row> rows_;
  std::string declaring_;  // the technique whose body is running (declare_all)
  std::vector<std::tuple<std::string, std::string, Set>> declared_;  // incl. switched-off sets
  std::vector<PaperClaim> claims_;
  std::map<Set, SetState> sets_;
  std::vector<std::string> reference_;
  size_t total_lines_ = 0;
  std::atomic<size_t> done_lines_{0};
  std::mutex progress_mutex_;
  double t_start_ = 0, last_progress_ = 0;
};

// Technique registration (see the top of this file).
using TechniqueBody = std::function<void(Study&)>;
struct TechniqueRegistrar {
  TechniqueRegistrar(const char* name, int order, TechniqueBody body);
};
struct RegisteredTechnique {
  std::string name;
  int order;
  TechniqueBody body;
};
std::vector<RegisteredTechnique>& technique_registry();

// Short number formatting for settings ("0.05", "4", "1e-03").
std::string fmt(double v);

}  // namespace ocr

#define ETK_OCR_TECHNIQUE(id, order)                                              \
  static void etk_ocr_technique_##id(::ocr::Study& study);                        \
  static ::ocr::TechniqueRegistrar etk_ocr_registrar_##id(#id, order, etk_ocr_technique_##id); \
  static void etk_ocr_technique_##id(::ocr::Study& study)
