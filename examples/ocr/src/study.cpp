// study.cpp: see study.hpp.
#include "study.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "render.hpp"

namespace ocr {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Thread CPU time: the time column, which a machine shared with other jobs distorts far
// less than wall time.
double cpu_s() { return thread_cpu_seconds(); }
bool hooks_empty(const Hooks& h) {
  if (h.attention || h.on_probs || h.prune || h.prune_after_block || h.weights || h.activation || h.gemm) return false;
  for (const auto& f : h.nonlinearity)
    if (f) return false;
  return true;
}
}  // namespace

namespace {
std::mutex& prepare_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

const char* set_name(Set s) { return s == Set::Short ? "short" : s == Set::Long ? "long" : "check"; }

DataOptions default_check_options() {
  DataOptions o;
  o.text_file = "/usr/share/common-licenses/GPL-3";
  o.fonts = {"/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
             "/usr/share/fonts/truetype/freefont/FreeSerif.ttf"};
  o.lines = 200;
  return o;
}

std::string fmt(double v) {
  char b[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) std::snprintf(b, sizeof b, "%.0e", v);
  else std::snprintf(b, sizeof b, "%g", v);
  return b;
}

std::vector<RegisteredTechnique>& technique_registry() {
  static std::vector<RegisteredTechnique> r;
  return r;
}

TechniqueRegistrar::TechniqueRegistrar(const char* name, int order, TechniqueBody body) {
  technique_registry().push_back({name, order, std::move(body)});
}

Study::Study(const Model& model, const Dictionary& dict, StudyOptions opts)
    : model_(&model), dict_(&dict), opts_(std::move(opts)) {
  if (!opts_.reference_strings.empty()) {
    std::ifstream f(opts_.reference_strings);
    if (!f) throw std::runtime_error("cannot read reference strings '" + opts_.reference_strings + "'");
    std::string line;
    while (std::getline(f, line)) reference_.push_back(line);
  }
}

void Study::add(const std::string& technique, const std::string& setting, Set set, Setup setup) {
  declared_.emplace_back(technique, setting, set);
  // A quantizer's short-set row is also a check-set row (declared even when switched off).
  const bool check = set == Set::Short && std::find(opts_.check_techniques.begin(), opts_.check_techniques.end(),
                                                    declaring_) != opts_.check_techniques.end();
  if (check) declared_.emplace_back(technique, setting, Set::Check);
  if (set == Set::Long && opts_.long_lines <= 0) return;  // the long set is switched off
  rows_.push_back({technique, setting, set, setup});
  if (check && opts_.check.lines > 0) rows_.push_back({technique, setting, Set::Check, std::move(setup)});
}

Study::SetState& Study::state(Set s) {
  auto it = sets_.find(s);  // no insertion once rows run: sets are prepared before
  if (it != sets_.end() && it->second.ready) return it->second;
  std::lock_guard<std::mutex> lock(prepare_mutex());
  SetState& st = sets_[s];
  if (!st.ready) prepare(s);
  return st;
}

const Dataset& Study::data(Set s) { return state(s).data; }
const Dataset& Study::calibration_data(Set s) { return state(s).calib; }
const Dataset& Study::validation_data(Set s) { return state(s).valid; }

const float* Study::image(Set s, int line) {
  const SetState& st = state(s);
  if (line < 0 || size_t(line) >= st.lines())
    throw std::out_of_range("Study::image: line index out of range");
  return st.image(size_t(line));
}

namespace {
// n indices evenly spaced over a pool of `pool` lines starting at index `first`.
std::vector<int> pool_lines(int first, int pool, int n, const std::string& what, const std::string& options) {
  if (n < 1 || n > pool)
    throw std::invalid_argument("Study::" + what + "_lines: " + std::to_string(n) + " lines asked of the " + what +
                                " pool of " + std::to_string(pool) + " (" + options + ", or a longer text)");
  std::vector<int> out;
  for (int k = 0; k < n; ++k) out.push_back(first + int(int64_t(k) * pool / n));
  return out;
}
}  // namespace

std::vector<int> Study::calibration_lines(Set s, int n) {
  const SetState& st = state(s);
  return pool_lines(int(st.data.size()), int(st.calib.size()), n, "calibration",
                    std::string(set_name(s)) + " set: --calib-lines / --long-calib-lines");
}

std::vector<int> Study::validation_lines(Set s, int n) {
  const SetState& st = state(s);
  return pool_lines(int(st.data.size() + st.calib.size()), int(st.valid.size()), n, "validation",
                    std::string(set_name(s)) + " set: --valid-lines / --long-valid-lines");
}

void Study::paper_claim(const std::string& paper, const std::string& claim, std::vector<ClaimFigure> figures) {
  for (auto& c : claims_)
    if (c.paper == paper && c.claim == claim) {
      c.figures.insert(c.figures.end(), figures.begin(), figures.end());
      return;
    }
  claims_.push_back({paper, claim, std::move(figures)});
}

const std::vector<Probs>& Study::float_probs(Set s) { return state(s).probs; }

std::string Study::decode(const Probs& p) const { return ctc_text(ctc_greedy(p.p.data(), p.T, p.classes), *dict_); }

DataOptions Study::set_options(Set s) const {
  DataOptions o = opts_.data;
  if (s == Set::Check) {
    o.text_file = opts_.check.text_file;
    o.fonts = opts_.check.fonts;
    o.lines = opts_.check.lines;
    o.skip = opts_.check.skip;
  }
  if (s == Set::Long) {
    o.width = opts_.long_width;
    o.max_chars = opts_.long_chars;
    o.lines = opts_.long_lines;
  }
  return o;
}

size_t Study::float_pass_lines(Set s) const {
  if (s == Set::Check) return size_t(opts_.check.lines);
  return s == Set::Short ? size_t(opts_.data.lines + opts_.calib_lines + opts_.valid_lines)
                         : size_t(opts_.long_lines + opts_.long_calib_lines + opts_.long_valid_lines);
}

void Study::prepare(Set s) {
  SetState& st = sets_[s];
  const DataOptions o = set_options(s);
  st.data = make_dataset(o, set_name(s));
  // The check set has no pools: what it scores is calibrated on the short set's.
  if (s != Set::Check) {
    // The pool comes from the articles after the last one any scored line (of either set)
    // comes from, so it shares no text with what is scored.
    int after = last_source(set_options(Set::Short));
    if (opts_.long_lines > 0) after = std::max(after, last_source(set_options(Set::Long)));
    st.calib = make_calibration_pool(o, s == Set::Short ? opts_.calib_lines : opts_.long_calib_lines, after,
                                     st.data.truth, std::string(set_name(s)) + " calibration");
    // The validation pool: the same held-out articles, no text of a scored or a calibration line.
    std::vector<std::string> taken = st.data.truth;
    taken.insert(taken.end(), st.calib.truth.begin(), st.calib.truth.end());
    st.valid = make_calibration_pool(o, s == Set::Short ? opts_.valid_lines : opts_.long_valid_lines, after, taken,
                                     std::string(set_name(s)) + " validation");
  }
  Runner r(*model_);
  const size_t n = st.data.size(), total = st.lines();
  st.cache.resize(total);
  st.probs.resize(total);
  st.strings.resize(n);
  double full = 0, bb = 0;
  for (size_t i = 0; i < total; ++i) {
    const bool scored = i < n;
    const double t0 = cpu_s();
    r.run(st.image(i), st.data.width, Hooks{}, st.probs[i], &st.cache[i]);
    const double t1 = cpu_s();
    progress(++done_lines_, std::string("float model, ") + set_name(s) + (scored ? " set" : " held-out pools"));
    if (!scored) continue;
    full += t1 - t0;
    bb += r.last_backbone_seconds();
    st.strings[i] = decode(st.probs[i]);
  }
  st.ms_full = 1e3 * full / double(n);
  st.ms_backbone = 1e3 * bb / double(n);
  st.ready = true;
}

double Study::neg_entropy(const Probs& p) {
  double total = 0;
  for (int t = 0; t < p.T; ++t) {
    const float* a = p.row(t);
    for (int c = 0; c < p.classes; ++c)
      if (a[c] > 0) total += double(a[c]) * std::log(double(a[c]));
  }
  return p.T ? total / p.T : 0;
}

double Study::kl(const Probs& p, const Probs& q, double p_neg_entropy) {
  if (p.T != q.T || p.classes != q.classes) return NAN;
  double cross = 0;
  for (int t = 0; t < p.T; ++t) {
    const float* a = p.row(t);
    const float* b = q.row(t);
    for (int c = 0; c < p.classes; ++c)
      if (a[c] > 0) cross += double(a[c]) * std::log(std::max(double(b[c]), 1e-12));
  }
  return p.T ? p_neg_entropy - cross / p.T : 0;
}

double Study::kl(const Probs& p, const Probs& q) { return kl(p, q, neg_entropy(p)); }

std::vector<Probs> Study::forward(const Run& run, Set s, const std::vector<int>& lines) {
  SetState& st = state(s);
  std::vector<int> idx = lines;
  if (idx.empty())
    for (size_t i = 0; i < st.data.size(); ++i) idx.push_back(int(i));
  std::unique_ptr<Model> derived;
  const Model* m = run.model ? run.model.get() : model_;
  if (run.hooks.weights) {
    derived = std::make_unique<Model>(m->with_weights(run.hooks.weights));
    m = derived.get();
  }
  const bool cached = m == model_ && !run.hooks.uses_backbone();
  Runner r(*m);
  std::vector<Probs> out(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    const int i = idx[k];
    if (i < 0 || size_t(i) >= st.probs.size()) throw std::out_of_range("Study::forward: line index out of range");
    if (cached) r.run_cached(st.cache[size_t(i)], run.hooks, out[k]);
    else r.run(st.image(size_t(i)), st.data.width, run.hooks, out[k]);
  }
  return out;
}

RowResult Study::evaluate(const Row& row) {
  SetState& st = state(row.set);
  Run run;
  {
    // Setups run one at a time (a technique may lazily build calibration shared by its
    // rows); only the rows' hooks run concurrently.
    static std::mutex setup_mutex;
    std::lock_guard<std::mutex> lock(setup_mutex);
    row.setup(run);
  }
  RowResult res;
  res.technique = row.technique;
  res.setting = row.setting;
  res.set = row.set;
  std::unique_ptr<Model> derived;
  const Model* m = run.model ? run.model.get() : model_;
  if (run.hooks.weights) {
    derived = std::make_unique<Model>(m->with_weights(run.hooks.weights));
    m = derived.get();
  }
  const bool baseline = m == model_ && hooks_empty(run.hooks);
  res.cached = !baseline && m == model_ && !run.hooks.uses_backbone();
  Runner r(*m);
  const size_t n = st.data.size();
  long edits = 0, chars = 0, exact = 0, agree = 0, compared = 0;
  double kl_sum = 0, secs = 0;
  Probs p;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    if (baseline) {
      s = st.strings[i];
    } else {
      const double t0 = cpu_s();
      if (res.cached) r.run_cached(st.cache[i], run.hooks, p);
      else r.run(st.data.images[i].data(), st.data.width, run.hooks, p);
      secs += cpu_s() - t0;
      s = decode(p);
      kl_sum += kl(st.probs[i], p);
    }
    const auto truth = utf8_decode(st.data.truth[i]);
    const auto got = utf8_decode(s);
    edits += edit_distance(std::u32string(truth.begin(), truth.end()), std::u32string(got.begin(), got.end()));
    chars += long(truth.size());
    exact += s == st.data.truth[i];
    if (row.set == Set::Short && i < reference_.size()) {
      ++compared;
      agree += s == reference_[i];
    }
    progress(++done_lines_, row.technique + " " + row.setting);
  }
  res.char_acc = chars ? 1.0 - double(edits) / double(chars) : 0;
  res.line_acc = double(exact) / double(n);
  res.mean_kl = baseline ? 0 : kl_sum / double(n);
  res.ms_per_line = baseline ? st.ms_full : 1e3 * secs / double(n) + (res.cached ? st.ms_backbone : 0);
  if (compared) res.agreement = double(agree) / double(compared);
  res.effect = run.effect ? run.effect() : Effect{"", 0};
  return res;
}

void Study::declare_all() {
  // A body may prepare a set (e.g. to choose calibration lines): progress counts its float pass.
  t_start_ = now_s();
  total_lines_ = float_pass_lines(Set::Short) + (opts_.long_lines > 0 ? float_pass_lines(Set::Long) : 0);
  auto reg = technique_registry();
  std::stable_sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  for (const auto& t : reg) {
    if (!opts_.only.empty() && std::find(opts_.only.begin(), opts_.only.end(), t.name) == opts_.only.end())
      continue;
    declaring_ = t.name;
    t.body(*this);
  }
  declaring_.clear();
  for (const auto& c : claims_)
    for (const auto& f : c.figures)
      // A check-set figure is optional: its technique may be left out of check_techniques.
      if (f.set != Set::Check &&
          std::find(declared_.begin(), declared_.end(), std::make_tuple(f.technique, f.setting, f.set)) ==
              declared_.end())
        throw std::logic_error("paper claim of " + c.paper + ": no row '" + f.technique + "' / '" + f.setting +
                               "' on the " + set_name(f.set) + " set was declared");
}

std::vector<RowResult> Study::evaluate_all() {
  t_start_ = now_s();
  done_lines_ = 0;
  // Work in lines: the float pass of each set used, then every row.
  std::map<Set, bool> used;
  for (const auto& r : rows_) used[r.set] = true;
  total_lines_ = 0;
  auto count = [&](Set s) {
    if (s == Set::Short) return size_t(opts_.data.lines);
    if (s == Set::Check) return size_t(opts_.check.lines);
    return size_t(opts_.long_lines);
  };
  for (const auto& u : used)
    if (!sets_[u.first].ready) total_lines_ += float_pass_lines(u.first);
  for (const auto& r : rows_) total_lines_ += count(r.set);
  for (const auto& u : used) state(u.first);  // the float pass first, single-threaded
  std::vector<RowResult> out(rows_.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i; (i = next++) < rows_.size();) {
      try {
        out[i] = evaluate(rows_[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = rows_.size();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, opts_.jobs); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  // Change vs the float row of the same set.
  for (auto& r : out) {
    const SetState& st = sets_[r.set];
    long edits = 0, chars = 0, exact = 0;
    for (size_t i = 0; i < st.data.size(); ++i) {
      const auto t = utf8_decode(st.data.truth[i]);
      const auto g = utf8_decode(st.strings[i]);
      edits += edit_distance(std::u32string(t.begin(), t.end()), std::u32string(g.begin(), g.end()));
      chars += long(t.size());
      exact += st.strings[i] == st.data.truth[i];
    }
    r.delta_char = r.char_acc - (chars ? 1.0 - double(edits) / double(chars) : 0);
    r.delta_line = r.line_acc - double(exact) / double(st.data.size());
    r.time_vs_float = st.ms_full > 0 ? r.ms_per_line / st.ms_full : 0;
  }
  if (opts_.progress) std::fprintf(stderr, "\n");
  return out;
}

void Study::progress(size_t done, const std::string& what) {
  if (!opts_.progress) return;
  static const bool tty = isatty(2);
  std::lock_guard<std::mutex> lock(progress_mutex_);
  const double t = now_s();
  const size_t total = std::max(total_lines_, done);
  if (t - last_progress_ < (tty ? 0.2 : 5.0) && done != total) return;
  last_progress_ = t;
  const double el = t - t_start_;
  const double rate = el > 0 ? done / el : 0;
  const double eta = rate > 0 ? double(total - done) / rate : 0;
  const int W = 30, fill = total ? int(W * double(done) / double(total)) : 0;
  std::string bar(size_t(fill), '#');
  bar.resize(W, '.');
  std::fprintf(stderr, "%s[%s] %zu/%zu lines %6.1f lines/s ETA %3d:%02d  %-40.40s%s", tty ? "\r" : "", bar.c_str(),
               done, total, rate, int(eta) / 60, int(eta) % 60, what.c_str(), tty ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace ocr
