// report_output.hpp: the report's table as markdown, CSV and an SVG chart of character
// accuracy against each technique's effect.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "study.hpp"

namespace ocr {

void write_markdown(std::ostream& os, const std::vector<RowResult>& rows);
void write_csv(std::ostream& os, const std::vector<RowResult>& rows);
void write_svg(std::ostream& os, const std::vector<RowResult>& rows);

}  // namespace ocr
