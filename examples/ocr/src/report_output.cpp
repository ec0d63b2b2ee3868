// report_output.cpp: see report_output.hpp.
#include "report_output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "curve_chart.hpp"

namespace ocr {

namespace {
std::string f(const char* format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}
// The effect's value to two decimals.
std::string effect_value(const Effect& e) { return fmt(std::round(e.value * 100) / 100); }
std::string effect_text(const Effect& e) {
  if (e.kind.empty()) return "-";
  return e.kind + " " + effect_value(e);
}
std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}
}  // namespace

void write_markdown(std::ostream& os, const std::vector<RowResult>& rows) {
  os << "| technique | setting | set | effect | char acc % | exact lines % | change vs float (pp chars) "
        "| mean KL vs float | ms/line (CPU) | agreement w/ reference % |\n";
  os << "|---|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    os << "| " << r.technique << " | " << r.setting << " | " << set_name(r.set) << " | " << effect_text(r.effect)
       << " | " << f("%.2f", 100 * r.char_acc) << " | " << f("%.2f", 100 * r.line_acc) << " | "
       << f("%+.2f", 100 * r.delta_char) << " | " << f("%.2e", r.mean_kl) << " | " << f("%.2f", r.ms_per_line)
       << (r.cached ? "*" : "") << " | " << (r.agreement < 0 ? std::string("-") : f("%.2f", 100 * r.agreement))
       << " |\n";
  }
  os << "\nms/line: CPU time of the thread per line (single-threaded). `*`: started from the cached backbone "
        "output; time = the float backbone's time + the measured rest.\n";
}

void write_csv(std::ostream& os, const std::vector<RowResult>& rows) {
  os << "technique,setting,set,effect_kind,effect_value,char_acc,line_acc,delta_char,mean_kl,ms_per_line,"
        "cached,agreement\n";
  for (const auto& r : rows)
    os << csv_quote(r.technique) << "," << csv_quote(r.setting) << "," << set_name(r.set) << ","
       << csv_quote(r.effect.kind) << "," << r.effect.value << "," << f("%.6f", r.char_acc) << ","
       << f("%.6f", r.line_acc) << "," << f("%.6f", r.delta_char) << "," << f("%.6e", r.mean_kl) << ","
       << f("%.3f", r.ms_per_line) << "," << (r.cached ? 1 : 0) << ","
       << (r.agreement < 0 ? std::string("") : f("%.6f", r.agreement)) << "\n";
}

examples::Chart report_chart(const std::vector<RowResult>& rows) {
  // One panel per technique with an effect: x = effect value, y = char accuracy %.
  examples::Chart chart;
  chart.title = "PP-OCRv4 on Reuters lines: character accuracy vs effect (blue: short set, orange: long set; dashed: float)";
  const auto color = [](Set s) { return s == Set::Short ? "#1f77b4" : "#ff7f0e"; };
  std::map<std::string, std::size_t> panel;
  for (const auto& r : rows) {
    if (r.technique == "dense float") chart.baselines.push_back({color(r.set), 100 * r.char_acc});
    if (r.effect.kind.empty()) continue;
    if (!panel.count(r.technique)) {
      panel[r.technique] = chart.panels.size();
      chart.panels.push_back({r.technique, r.effect.kind, {{color(Set::Short), {}}, {color(Set::Long), {}}}});
    }
    chart.panels[panel[r.technique]].series[r.set == Set::Short ? 0 : 1].points.push_back(
        {r.effect.value, 100 * r.char_acc, r.setting});
  }
  return chart;
}

void write_svg(std::ostream& os, const std::vector<RowResult>& rows) { examples::write_curve_chart(os, report_chart(rows)); }

std::string quantity_text(Quantity q, const RowResult& r) {
  switch (q) {
    case Quantity::CharAcc: return f("%.2f", 100 * r.char_acc) + "% chars";
    case Quantity::CharChange: return f("%+.2f", 100 * r.delta_char) + " pp chars";
    case Quantity::LineChange: return f("%+.2f", 100 * r.delta_line) + " pp exact lines";
    case Quantity::Effect: {
      if (r.effect.kind.empty()) return "no effect";
      const std::string v = effect_value(r.effect);
      const std::string pct = " %";
      const std::string& k = r.effect.kind;
      if (k.size() > pct.size() && k.compare(k.size() - pct.size(), pct.size(), pct) == 0)
        return v + "% " + k.substr(0, k.size() - pct.size());  // "keys filtered %" -> "84.09% keys filtered"
      return v + " " + k;
    }
    case Quantity::TimeVsFloat: return f("%.2f", r.time_vs_float) + "x float time";
    case Quantity::KL: return "KL " + f("%.2e", r.mean_kl);
  }
  return "";
}

std::vector<ResolvedClaim> resolve_claims(const std::vector<PaperClaim>& claims, const std::vector<RowResult>& rows) {
  std::vector<ResolvedClaim> out;
  for (const auto& c : claims) {
    ResolvedClaim rc{c.paper, c.claim, {}};
    for (const auto& fig : c.figures) {
      const auto it = std::find_if(rows.begin(), rows.end(), [&](const RowResult& r) {
        return r.technique == fig.technique && r.setting == fig.setting && r.set == fig.set;
      });
      if (it == rows.end()) continue;
      std::string text = fig.label.empty() ? fig.technique + ", " + fig.setting + " (" + set_name(fig.set) + ")"
                                           : fig.label;
      for (size_t k = 0; k < fig.show.size(); ++k) text += (k ? ", " : ": ") + quantity_text(fig.show[k], *it);
      rc.figures.push_back(text);
    }
    if (!rc.figures.empty()) out.push_back(std::move(rc));
  }
  return out;
}

void write_papers_markdown(std::ostream& os, const std::vector<ResolvedClaim>& claims) {
  os << "## Papers' headline figures beside ours\n\n"
        "Each technique declares its paper's headline claim and the rows of this run that give ours "
        "(`study.paper_claim`). The papers measured other models and tasks; ours are PP-OCRv4 on the lines "
        "above. \"pp chars\" / \"pp exact lines\": change against the dense float row of the same set.\n\n";
  if (claims.empty()) {
    os << "(no claims: none of the rows they refer to ran)\n";
    return;
  }
  os << "| paper | its headline | etk on PP-OCRv4 (this run) |\n|---|---|---|\n";
  for (const auto& c : claims) {
    os << "| " << c.paper << " | " << c.claim << " | ";
    for (size_t k = 0; k < c.figures.size(); ++k) os << (k ? "; " : "") << c.figures[k];
    os << " |\n";
  }
}

}  // namespace ocr
