// report_output.cpp: see report_output.hpp.
#include "report_output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

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
std::string xml(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
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

void write_svg(std::ostream& os, const std::vector<RowResult>& rows) {
  // One panel per technique with an effect: x = effect value, y = char accuracy %.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const RowResult*>> by;
  std::map<Set, double> float_acc;
  for (const auto& r : rows) {
    if (r.technique == "dense float") float_acc[r.set] = 100 * r.char_acc;
    if (r.effect.kind.empty()) continue;
    if (!by.count(r.technique)) order.push_back(r.technique);
    by[r.technique].push_back(&r);
  }
  const int pw = 320, ph = 220, cols = 3, margin = 50;
  const int n = std::max<int>(1, int(order.size()));
  const int W = cols * (pw + margin) + margin, H = ((n + cols - 1) / cols) * (ph + margin + 20) + 60;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
     << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << "<text x=\"" << margin << "\" y=\"24\" font-size=\"15\">PP-OCRv4 on Reuters lines: character accuracy vs "
        "effect (blue: short set, orange: long set; dashed: float)</text>\n";
  if (order.empty()) os << "<text x=\"50\" y=\"60\">no technique rows with an effect yet</text>\n";
  for (int k = 0; k < int(order.size()); ++k) {
    const auto& pts = by[order[k]];
    const int x0 = margin + (k % cols) * (pw + margin), y0 = 50 + (k / cols) * (ph + margin + 20);
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (auto* p : pts) {
      xmin = std::min(xmin, p->effect.value); xmax = std::max(xmax, p->effect.value);
      ymin = std::min(ymin, 100 * p->char_acc); ymax = std::max(ymax, 100 * p->char_acc);
    }
    for (auto& fa : float_acc) { ymin = std::min(ymin, fa.second); ymax = std::max(ymax, fa.second); }
    if (xmax - xmin < 1e-9) { xmin -= 1; xmax += 1; }
    if (ymax - ymin < 0.5) { ymin -= 0.25; ymax += 0.25; }
    const double pad = 0.05 * (ymax - ymin);
    ymin = std::max(0.0, ymin - pad);
    ymax = std::min(100.0, ymax + pad);
    if (ymax - ymin < 0.5) ymin = ymax - 0.5;
    auto X = [&](double v) { return x0 + (v - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double v) { return y0 + ph - (v - ymin) / (ymax - ymin) * ph; };
    os << "<g><rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << pw << "\" height=\"" << ph
       << "\" fill=\"none\" stroke=\"#888\"/>\n<text x=\"" << x0 << "\" y=\"" << y0 - 6 << "\" font-size=\"12\">"
       << xml(order[k]) << "</text>\n<text x=\"" << x0 + pw / 2 << "\" y=\"" << y0 + ph + 28
       << "\" text-anchor=\"middle\">" << xml(pts[0]->effect.kind) << "</text>\n";
    for (int t = 0; t <= 4; ++t) {
      const double yv = ymin + (ymax - ymin) * t / 4, xv = xmin + (xmax - xmin) * t / 4;
      os << "<text x=\"" << x0 - 4 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << f("%.1f", yv)
         << "</text><text x=\"" << X(xv) << "\" y=\"" << y0 + ph + 14 << "\" text-anchor=\"middle\">"
         << fmt(std::round(xv * 100) / 100) << "</text>\n";
    }
    for (auto& fa : float_acc)
      os << "<line x1=\"" << x0 << "\" x2=\"" << x0 + pw << "\" y1=\"" << Y(fa.second) << "\" y2=\"" << Y(fa.second)
         << "\" stroke=\"" << (fa.first == Set::Short ? "#1f77b4" : "#ff7f0e") << "\" stroke-dasharray=\"4 3\"/>\n";
    for (Set s : {Set::Short, Set::Long}) {
      std::vector<const RowResult*> ps;
      for (auto* p : pts) if (p->set == s) ps.push_back(p);
      std::sort(ps.begin(), ps.end(), [](auto* a, auto* b) { return a->effect.value < b->effect.value; });
      const char* col = s == Set::Short ? "#1f77b4" : "#ff7f0e";
      if (ps.size() > 1) {
        os << "<polyline fill=\"none\" stroke=\"" << col << "\" points=\"";
        for (auto* p : ps) os << X(p->effect.value) << "," << Y(100 * p->char_acc) << " ";
        os << "\"/>\n";
      }
      for (auto* p : ps)
        os << "<circle cx=\"" << X(p->effect.value) << "\" cy=\"" << Y(100 * p->char_acc) << "\" r=\"3\" fill=\""
           << col << "\"><title>" << xml(p->setting) << "</title></circle>\n";
    }
    os << "</g>\n";
  }
  os << "</svg>\n";
}

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
