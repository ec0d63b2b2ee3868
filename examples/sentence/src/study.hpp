// study.hpp: the sentence-encoder report (issue 15): the techniques as named encoder
// settings, and one row per technique with quality measures (quality.hpp) and speed.
//
// Data, all held apart: the retrieval set (`sentences` Reuters-21578 sentences of the
// Weka ARFF files, evenly spaced), the SpamAssassin probe split (`spam_per_class` mails
// per class to train the float probe, as many to test every technique), and the
// calibration set (the r-cran-tm Reuters sentences, another copy of the corpus the
// retrieval sentences are not drawn from) on which LTP's threshold is chosen with etk's
// calibrator. Speed: the thread CPU time of embedding the retrieval set (tokenizer
// excluded: the same for every row) in one process, best of `repeat` passes; speed-up is
// the float row's time over the row's, so ratios come from one run.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "encoder.hpp"

namespace sentence {

struct Technique {
  std::string name, what, claim;  // claim: the paper's, printed beside the row
  EncoderOptions options;
  bool calibrate_ltp = false;     // choose options.prune_value for ~keep_target kept tokens
  double keep_target = 0.5;
};

// Every row the report can print, float first; "accelerated" is the combined row.
std::vector<Technique> sentence_techniques();
// The named technique; throws std::invalid_argument listing the names.
Technique sentence_technique(const std::string& name);

struct StudyOptions {
  int sentences = 1000, spam_per_class = 150, repeat = 2, neighbours = 10;
  std::vector<std::string> only;  // row names; empty = all
};

// Runs the report and prints its markdown table to `out`.
void run_sentence_study(const StudyOptions& opt, std::ostream& out);

}  // namespace sentence
