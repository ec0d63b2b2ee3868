// report: the etk report on a real pretrained transformer (PP-OCRv4 text recognition on
// Reuters-21578 lines). Every technique registered in techniques/*.cpp adds its rows and
// may declare its paper's headline claims; prints the rows table and the claims beside our
// figures (markdown), writes report.csv, report.svg, report.chart (the chart's data, for
// scripts/report's charts.svg) and papers.md to --out.
//   report [--out DIR] [--only a,b] [--text FILE] [--font F]... [--lines N] [--width W]
//          [--chars N] [--long-lines N] [--long-width W] [--long-chars N]
//          [--calib-lines N] [--long-calib-lines N] [--valid-lines N] [--long-valid-lines N] [--reference FILE] [--jobs N] [--quiet]
//          [--check-lines N] [--check-text FILE] [--check-font F]...
// The check set (--check-lines, default 200; 0 = off): another text in other fonts on which
// the quantizer rows are scored again, calibrated on the short set's pool (study.hpp).
// Techniques calibrate on a held-out pool per set (--calib-lines, default 64 short lines;
// --long-calib-lines, 16): lines of the articles after every scored line, never scored.
// Rows run on --jobs threads (default 2), one row per thread; every row's figures are the
// same whatever the number of jobs (the time column is each row's own thread CPU time).
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "curve_chart.hpp"
#include "report_output.hpp"
#include "study.hpp"

using namespace ocr;

int main(int argc, char** argv) try {
  Cli cli(argc, argv);
  if (cli.flag("help")) {
    std::cout << "usage: report [--out DIR] [--only a,b] [--text FILE] [--font F]... [--lines N] [--width W]\n"
                 "              [--chars N] [--long-lines N] [--long-width W] [--long-chars N]\n"
                 "              [--calib-lines N] [--long-calib-lines N] [--valid-lines N] [--long-valid-lines N] [--reference FILE] [--jobs N] [--quiet]\n"
                 "              [--check-lines N] [--check-text FILE] [--check-font F]...\n";
    return 0;
  }
  StudyOptions o;
  o.data = cli.data_options();
  o.long_lines = cli.geti("long-lines", o.long_lines);
  o.long_width = cli.geti("long-width", o.long_width);
  o.long_chars = cli.geti("long-chars", o.long_chars);
  o.calib_lines = cli.geti("calib-lines", o.calib_lines);
  o.long_calib_lines = cli.geti("long-calib-lines", o.long_calib_lines);
  if (o.calib_lines < 0 || o.long_calib_lines < 0) throw std::invalid_argument("--calib-lines must be >= 0");
  o.valid_lines = cli.geti("valid-lines", o.valid_lines);
  o.long_valid_lines = cli.geti("long-valid-lines", o.long_valid_lines);
  if (o.valid_lines < 0 || o.long_valid_lines < 0) throw std::invalid_argument("--valid-lines must be >= 0");
  o.check.lines = cli.geti("check-lines", o.check.lines);
  o.check.text_file = cli.get("check-text", o.check.text_file);
  if (!cli.all("check-font").empty()) o.check.fonts = cli.all("check-font");
  o.reference_strings = cli.get("reference", "");
  o.progress = !cli.flag("quiet");
  o.jobs = cli.geti("jobs", o.jobs);
  if (o.jobs < 1) throw std::invalid_argument("--jobs must be >= 1");
  std::stringstream only(cli.get("only", ""));
  for (std::string t; std::getline(only, t, ',');)
    if (!t.empty()) o.only.push_back(t);
  const std::string out = cli.get("out", "ocr-report");
  const std::string mdir = model_dir_from_env();
  Model model = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
  Dictionary dict = Dictionary::load(mdir + "/ppocr_keys_v1.txt");
  Study study(model, dict, o);
  study.declare_all();
  if (study.rows_declared() == 0) throw std::invalid_argument("no rows: check --only");
  std::vector<RowResult> rows = study.evaluate_all();
  std::cout << "PP-OCRv4 recogniser (" << model.num_parameters << " parameters after BatchNorm folding), "
            << study.data(Set::Short).size() << " short lines at width " << o.data.width;
  if (o.long_lines > 0) std::cout << ", " << o.long_lines << " long lines at width " << o.long_width;
  std::cout << (o.data.text_file.empty() ? " (Reuters-21578)" : " (" + o.data.text_file + ")")
            << "; techniques calibrate on held-out lines of later articles (pools of " << o.calib_lines << " short"
            << (o.long_lines > 0 ? ", " + std::to_string(o.long_calib_lines) + " long" : std::string()) << " lines)\n\n";
  write_markdown(std::cout, rows);
  const std::vector<ResolvedClaim> claims = resolve_claims(study.paper_claims(), rows);
  std::cout << "\n";
  write_papers_markdown(std::cout, claims);
  mkdir(out.c_str(), 0755);
  std::ofstream csv(out + "/report.csv"), svg(out + "/report.svg"), chart(out + "/report.chart"),
      papers(out + "/papers.md");
  if (!csv || !svg || !chart || !papers) throw std::runtime_error("cannot write to '" + out + "'");
  write_csv(csv, rows);
  write_svg(svg, rows);
  examples::write_chart_data(chart, report_chart(rows));
  write_papers_markdown(papers, claims);
  std::cerr << "wrote " << out << "/report.csv, " << out << "/report.svg, " << out << "/report.chart and " << out
            << "/papers.md\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "report: " << e.what() << "\n";
  return 1;
}
