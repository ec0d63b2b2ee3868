// report_output.hpp: the report's table as markdown, CSV and an SVG chart of character
// accuracy against each technique's effect; the papers' headline claims beside our figures.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "curve_chart.hpp"
#include "study.hpp"

namespace ocr {

void write_markdown(std::ostream& os, const std::vector<RowResult>& rows);
void write_csv(std::ostream& os, const std::vector<RowResult>& rows);
// The chart of report.svg (also written as chart data, report.chart, for charts.svg).
examples::Chart report_chart(const std::vector<RowResult>& rows);
void write_svg(std::ostream& os, const std::vector<RowResult>& rows);

// A claim with our figures from the rows that ran (figures of rows absent are left out).
struct ResolvedClaim {
  std::string paper, claim;
  std::vector<std::string> figures;  // "label: quantity, quantity"
};
// One entry per claim with at least one of its rows among `rows`, in declaration order.
std::vector<ResolvedClaim> resolve_claims(const std::vector<PaperClaim>& claims, const std::vector<RowResult>& rows);
std::string quantity_text(Quantity q, const RowResult& r);
// The "Papers' headline figures beside ours" markdown section (heading, note, table).
void write_papers_markdown(std::ostream& os, const std::vector<ResolvedClaim>& claims);

}  // namespace ocr
