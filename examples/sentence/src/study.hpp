// study.hpp: the sentence-encoder report (issue 15): the techniques as named encoder
// settings, and one row per technique with quality measures (quality.hpp) and speed.
//
// Data, all held apart: the retrieval set (`sentences` Reuters-21578 sentences of the
// Weka ARFF files, evenly spaced), the SpamAssassin probe split (`spam_per_class` mails
// per class to train the float probe, as many to test every technique), and the
// calibration set (the r-cran-tm Reuters sentences; its 70 articles are in the ARFF files
// too, so a sentence that is also in the retrieval set is left out of it) on which every
// calibrated row (techniques.hpp) chooses its settings: LTP's threshold, LATTE's
// thresholds, the two-scaled grids, the activation codecs. Speed: the thread CPU time of embedding the retrieval set (tokenizer
// excluded: the same for every row) in one process, best of `repeat` passes; speed-up is
// the float row's time over the row's, so ratios come from one run.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "techniques.hpp"

namespace sentence {

// Every row the report can print, float first, then the families of techniques.hpp, then
// the combined rows ("accelerated" is the combined row).
std::vector<Technique> sentence_techniques();
// The named technique; throws std::invalid_argument listing the names.
Technique sentence_technique(const std::string& name);

struct StudyOptions {
  int sentences = 1000, spam_per_class = 150, repeat = 2, neighbours = 10;
  std::vector<std::string> only;  // row names; empty = all
  std::string svg;                // if set: the chart (agreement vs effect per family) goes there
  std::string chart_data;         // if set: the chart's data (curve_chart.hpp's text form) goes there
};

// Runs the report and prints its markdown table to `out`.
void run_sentence_study(const StudyOptions& opt, std::ostream& out);

}  // namespace sentence
