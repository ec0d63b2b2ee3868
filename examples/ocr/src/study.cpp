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

const char* set_name(Set s) { return s == Set::Short ? "short" : "long"; }

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
  if (set == Set::Long && opts_.long_lines <= 0) return;  // the long set is switched off
  rows_.push_back({technique, setting, set, std::move(setup)});
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
const std::vector<Probs>& Study::float_probs(Set s) { return state(s).probs; }

std::string Study::decode(const Probs& p) const { return ctc_text(ctc_greedy(p.p.data(), p.T, p.classes), *dict_); }

void Study::prepare(Set s) {
  SetState& st = sets_[s];
  DataOptions o = opts_.data;
  if (s == Set::Long) {
    o.width = opts_.long_width;
    o.max_chars = opts_.long_chars;
    o.lines = opts_.long_lines;
  }
  st.data = make_dataset(o, set_name(s));
  Runner r(*model_);
  const size_t n = st.data.size();
  st.cache.resize(n);
  st.probs.resize(n);
  st.strings.resize(n);
  double full = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t0 = cpu_s();
    r.run(st.data.images[i].data(), st.data.width, Hooks{}, st.probs[i], &st.cache[i]);
    const double t1 = cpu_s();
    full += t1 - t0;
    bb += r.last_backbone_seconds();
    st.strings[i] = decode(st.probs[i]);
    progress(++done_lines_, std::string("float model, ") + set_name(s) + " set");
  }
  st.ms_full = 1e3 * full / double(n);
  st.ms_backbone = 1e3 * bb / double(n);
  st.ready = true;
}

double Study::kl(const Probs& p, const Probs& q) {
  if (p.T != q.T || p.classes != q.classes) return NAN;
  double total = 0;
  for (int t = 0; t < p.T; ++t) {
    const float* a = p.row(t);
    const float* b = q.row(t);
    double s = 0;
    for (int c = 0; c < p.classes; ++c)
      if (a[c] > 0) s += double(a[c]) * (std::log(double(a[c])) - std::log(std::max(double(b[c]), 1e-12)));
    total += s;
  }
  return p.T ? total / p.T : 0;
}

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
    if (i < 0 || size_t(i) >= st.data.size()) throw std::out_of_range("Study::forward: line index out of range");
    if (cached) r.run_cached(st.cache[i], run.hooks, out[k]);
    else r.run(st.data.images[i].data(), st.data.width, run.hooks, out[k]);
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
  auto reg = technique_registry();
  std::stable_sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  for (const auto& t : reg) {
    if (!opts_.only.empty() && std::find(opts_.only.begin(), opts_.only.end(), t.name) == opts_.only.end())
      continue;
    t.body(*this);
  }
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
    return size_t(opts_.long_lines);
  };
  for (const auto& u : used)
    if (!sets_[u.first].ready) total_lines_ += count(u.first);
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
    long edits = 0, chars = 0;
    for (size_t i = 0; i < st.data.size(); ++i) {
      const auto t = utf8_decode(st.data.truth[i]);
      const auto g = utf8_decode(st.strings[i]);
      edits += edit_distance(std::u32string(t.begin(), t.end()), std::u32string(g.begin(), g.end()));
      chars += long(t.size());
    }
    r.delta_char = r.char_acc - (chars ? 1.0 - double(edits) / double(chars) : 0);
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
