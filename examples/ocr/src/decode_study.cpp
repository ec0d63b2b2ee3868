// decode_study.cpp: see decode_study.hpp.
#include "decode_study.hpp"

#include "cli.hpp"

#include <etk/attention/decode.hpp>
#include <etk/attention/dense.hpp>
#include <etk/attention/latte.hpp>
#include <etk/attention/latte_threshold.hpp>
#include <etk/attention/reference/decode.hpp>
#include <etk/attention/reference/dense.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

namespace ocr {
namespace {

// One block's attention inputs of one line, contiguous [heads, T, dim].
struct BlockRows {
  std::ptrdiff_t heads = 0, T = 0, dim = 0, dv = 0;
  float scale = 0;
  std::vector<float> q, k, v;
  static std::vector<float> copy(const etk::HeadsView<const float>& x) {
    std::vector<float> d(std::size_t(x.heads * x.seq * x.dim));
    for (std::ptrdiff_t h = 0; h < x.heads; ++h)
      for (std::ptrdiff_t i = 0; i < x.seq; ++i)
        std::copy(x.row(h, i), x.row(h, i) + x.dim, d.data() + (h * x.seq + i) * x.dim);
    return d;
  }
  etk::HeadsView<const float> Q() const { return {q.data(), heads, T, dim}; }
  etk::HeadsView<const float> K() const { return {k.data(), heads, T, dim}; }
  etk::HeadsView<const float> V() const { return {v.data(), heads, T, dv}; }
};
using LineRows = std::vector<BlockRows>;  // by block

// The q/k/v of every block of the given lines, from a float run of the study.
std::vector<LineRows> record(Study& study, Set set, const std::vector<int>& lines) {
  auto rec = std::make_shared<std::vector<LineRows>>();
  Run probe;
  probe.hooks.attention = [rec](const AttentionCall& c) {
    if (c.block == 0) rec->emplace_back();
    LineRows& line = rec->back();
    if (line.size() <= std::size_t(c.block)) line.resize(std::size_t(c.block) + 1);
    BlockRows& b = line[std::size_t(c.block)];
    b.heads = c.q.heads, b.T = c.q.seq, b.dim = c.q.dim, b.dv = c.v.dim, b.scale = c.scale;
    b.q = BlockRows::copy(c.q), b.k = BlockRows::copy(c.k), b.v = BlockRows::copy(c.v);
    etk::AttentionParams p;
    p.scale = c.scale;
    etk::dense_attention(c.q, c.k, c.v, c.o, p);
  };
  study.forward(probe, set, lines);
  if (rec->size() != lines.size()) throw std::runtime_error("decode_study: one recording per line expected");
  return std::move(*rec);
}

double rel_l2(const float* a, const float* b, std::ptrdiff_t n) {
  double d = 0, r = 0;
  for (std::ptrdiff_t c = 0; c < n; ++c) d += (double(a[c]) - b[c]) * (double(a[c]) - b[c]), r += double(b[c]) * b[c];
  return r > 0 ? std::sqrt(d / r) : std::sqrt(d);
}

double norm(const float* a, std::ptrdiff_t n) {
  double r = 0;
  for (std::ptrdiff_t c = 0; c < n; ++c) r += double(a[c]) * a[c];
  return std::sqrt(r);
}

// A setting: thresholds [block][head].
struct Setting {
  std::string name;
  std::vector<std::vector<float>> theta;
};

struct Sums {
  double kept_mass = 0, min_mass = 1, err_dense = 0, norm_ratio = 0, err_float = 0, cache = 0, prefill_err = 0;
  std::int64_t considered = 0, kept = 0, pre_considered = 0, pre_kept = 0, mismatches = 0, rows = 0;
};

// Every setting on one block of one line.
void score_block(const BlockRows& b, etk::KVValueType values, const std::vector<Setting>& settings,
                 std::size_t block, std::vector<Sums>& sums) {
  const std::ptrdiff_t H = b.heads, T = b.T, d = b.dim, dv = b.dv;
  etk::KVCacheConfig cfg;
  cfg.kv_heads = H, cfg.dim = d, cfg.value_dim = dv, cfg.values = values;
  etk::KVCache cache(cfg);
  cache.append(b.K(), b.V());

  etk::AttentionParams ap;
  ap.scale = b.scale;
  std::vector<float> probs(std::size_t(H * T * T)), of(std::size_t(H * T * dv));
  etk::reference::attention_probs(b.Q(), b.K(), {probs.data(), H, T, T}, ap);
  etk::reference::dense_attention(b.Q(), b.K(), b.V(), {of.data(), H, T, dv}, ap);
  const auto float_row = [&](std::ptrdiff_t h, std::ptrdiff_t i) { return of.data() + (h * T + i) * dv; };

  // Query row i of every head: one decode step against the whole cache.
  const auto query = [&](std::ptrdiff_t i) {
    return etk::HeadsView<const float>(b.q.data() + i * d, H, 1, d, d, T * d);
  };
  std::vector<float> od(std::size_t(T * H * dv)), ol(std::size_t(H * dv)), oref(std::size_t(H * dv));
  etk::DecodeParams dp;
  dp.scale = b.scale;
  for (std::ptrdiff_t i = 0; i < T; ++i)
    etk::dense_decode(cache, query(i), {od.data() + i * H * dv, H, 1, dv}, dp);
  const auto dense_row = [&](std::ptrdiff_t h, std::ptrdiff_t i) { return od.data() + (i * H + h) * dv; };
  double cache_err = 0;
  for (std::ptrdiff_t i = 0; i < T; ++i)
    for (std::ptrdiff_t h = 0; h < H; ++h) cache_err += rel_l2(dense_row(h, i), float_row(h, i), dv);

  std::vector<float> opre(std::size_t(H * T * dv));
  std::vector<std::vector<std::ptrdiff_t>> kept_sets;
  for (std::size_t s = 0; s < settings.size(); ++s) {
    Sums& S = sums[s];
    S.cache += cache_err;
    dp.theta = settings[s].theta.at(block);
    if (dp.theta.size() != std::size_t(H)) throw std::invalid_argument("decode_study: one threshold per head expected");
    for (std::ptrdiff_t i = 0; i < T; ++i) {
      etk::LatteStats st;
      etk::latte_decode(cache, query(i), {ol.data(), H, 1, dv}, dp, {}, &st);
      etk::reference::decode_attention(cache, query(i), {oref.data(), H, 1, dv}, dp, false, nullptr, &kept_sets);
      for (std::ptrdiff_t h = 0; h < H; ++h) {
        const auto& kept = kept_sets[std::size_t(h)];
        S.considered += st.considered[std::size_t(h)];
        S.kept += st.kept[std::size_t(h)];
        S.mismatches += st.kept[std::size_t(h)] != std::int64_t(kept.size());
        double mass = 0;
        for (std::ptrdiff_t j : kept) mass += probs[std::size_t((h * T + i) * T + j)];
        S.kept_mass += mass;
        S.min_mass = std::min(S.min_mass, mass);
        S.err_dense += rel_l2(ol.data() + h * dv, dense_row(h, i), dv);
        S.err_float += rel_l2(ol.data() + h * dv, float_row(h, i), dv);
        S.norm_ratio += norm(ol.data() + h * dv, dv) / norm(dense_row(h, i), dv);
        ++S.rows;
      }
    }
    etk::LatteParams lp;
    lp.attention.scale = b.scale;
    lp.theta = dp.theta;
    etk::LatteStats pst;
    etk::latte_attention(b.Q(), b.K(), b.V(), {opre.data(), H, T, dv}, lp, &pst);
    for (std::ptrdiff_t h = 0; h < H; ++h) {
      S.pre_considered += pst.considered[std::size_t(h)];
      S.pre_kept += pst.kept[std::size_t(h)];
      for (std::ptrdiff_t i = 0; i < T; ++i)
        S.prefill_err += rel_l2(opre.data() + (h * T + i) * dv, float_row(h, i), dv);
    }
  }
}

std::vector<etk::LatteSample> samples(const std::vector<LineRows>& lines, std::size_t block) {
  std::vector<etk::LatteSample> s;
  for (const LineRows& l : lines) s.push_back({l.at(block).Q(), l.at(block).K(), l.at(block).V()});
  return s;
}

std::string percent(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g%%", 100 * x);
  return b;
}

}  // namespace

std::vector<DecodeStudyRow> decode_study(Study& study, const DecodeStudyOptions& opts) {
  std::vector<DecodeStudyRow> out;
  std::vector<Set> sets = {Set::Short};
  if (opts.long_set) sets.push_back(Set::Long);
  for (Set set : sets) {
    const int n = set == Set::Short ? opts.short_lines : opts.long_lines;
    const int nc = set == Set::Short ? opts.short_calib : opts.long_calib;
    if (n < 1) throw std::invalid_argument("decode_study: at least one scored line per set");
    if (size_t(n) > study.data(set).size()) throw std::invalid_argument("decode_study: more lines asked than the set has");
    std::vector<int> scored(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) scored[std::size_t(i)] = i;
    const std::vector<LineRows> lines = record(study, set, scored);
    const std::size_t blocks = lines.front().size();
    const std::ptrdiff_t H = lines.front().front().heads;

    std::vector<Setting> settings;
    if (!opts.filtered_targets.empty() || !opts.mass_budgets.empty()) {
      const std::vector<LineRows> calib = record(study, set, study.calibration_lines(set, nc));
      // theta per block from calibrate(samples of the block, base params).
      const auto calibrated = [&](const std::string& name, const auto& calibrate) {
        Setting s{name, {}};
        for (std::size_t b = 0; b < blocks; ++b) {
          etk::LatteParams base;
          base.attention.scale = calib.front().at(b).scale;
          s.theta.push_back(calibrate(samples(calib, b), base));
        }
        settings.push_back(std::move(s));
      };
      for (double target : opts.filtered_targets) {
        if (!(target >= 0 && target < 1)) throw std::invalid_argument("decode_study: filtered targets in [0, 1)");
        calibrated("calibrated " + percent(target) + " filtered",
                   [target](const std::vector<etk::LatteSample>& s, const etk::LatteParams& base) {
                     return etk::latte_calibrate_keep_ratio(s, base, 1.0 - target);
                   });
      }
      for (double eps : opts.mass_budgets)
        calibrated("calibrated " + percent(eps) + " mass dropped",
                   [eps](const std::vector<etk::LatteSample>& s, const etk::LatteParams& base) {
                     return etk::latte_calibrate_error_budget(s, base, eps);
                   });
    }
    for (float t : opts.thetas)
      settings.push_back({"theta " + (std::isinf(t) ? std::string("inf") : fmt(t)),
                          std::vector<std::vector<float>>(blocks, std::vector<float>(std::size_t(H), t))});

    std::vector<Sums> sums(settings.size());
    for (const LineRows& l : lines)
      for (std::size_t b = 0; b < blocks; ++b) score_block(l.at(b), opts.values, settings, b, sums);
    for (std::size_t s = 0; s < settings.size(); ++s) {
      const Sums& S = sums[s];
      DecodeStudyRow r;
      r.set = set;
      r.setting = settings[s].name;
      const double rows = double(S.rows);
      r.filtered = S.considered ? double(S.considered - S.kept) / double(S.considered) : 0;
      r.kept_mass = S.kept_mass / rows;
      r.min_kept_mass = S.min_mass;
      r.err_vs_dense = S.err_dense / rows;
      r.err_vs_float = S.err_float / rows;
      r.norm_ratio = S.norm_ratio / rows;
      r.cache_error = S.cache / rows;
      r.prefill_filtered = S.pre_considered ? double(S.pre_considered - S.pre_kept) / double(S.pre_considered) : 0;
      r.prefill_err_vs_float = S.prefill_err / rows;
      r.count_mismatches = S.mismatches;
      r.rows = S.rows;
      r.lines = n;
      r.tokens = int(lines.front().front().T);
      out.push_back(r);
    }
  }
  return out;
}

void print_decode_study(const std::vector<DecodeStudyRow>& rows, std::FILE* f) {
  std::fprintf(f,
               "| set (lines x tokens) | thresholds | filtered (decode) | kept softmax mass (mean / min) | "
               "rel. L2 vs dense decode | output norm / dense norm | rel. L2 vs float | cache error (dense decode vs float) | "
               "prefill LATTE: filtered / rel. L2 vs float | kept-count mismatches |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
  for (const DecodeStudyRow& r : rows)
    std::fprintf(f, "| %s (%d x %d) | %s | %.1f%% | %.3f / %.3f | %.3f | %.2f | %.3f | %.4f | %.1f%% / %.3f | %lld of %lld |\n",
                 set_name(r.set), r.lines, r.tokens, r.setting.c_str(), 100 * r.filtered, r.kept_mass,
                 r.min_kept_mass, r.err_vs_dense, r.norm_ratio, r.err_vs_float, r.cache_error, 100 * r.prefill_filtered,
                 r.prefill_err_vs_float, static_cast<long long>(r.count_mismatches), static_cast<long long>(r.rows));
}

int decode_study_command(int argc, char** argv) {
  Cli cli(argc, argv, {"no-long", "no-targets"});
  DecodeStudyOptions d;
  d.short_lines = cli.geti("lines", d.short_lines);
  d.long_lines = cli.geti("long-lines", d.long_lines);
  d.short_calib = cli.geti("calib", d.short_calib);
  d.long_calib = cli.geti("long-calib", d.long_calib);
  d.long_set = !cli.flag("no-long");
  for (const std::string& t : cli.all("theta")) d.thetas.push_back(t == "inf" ? std::numeric_limits<float>::infinity() : std::stof(t));
  if (d.thetas.empty()) d.thetas.push_back(std::numeric_limits<float>::infinity());
  for (const std::string& e : cli.all("mass-budget")) d.mass_budgets.push_back(std::stod(e));
  if (cli.flag("no-targets")) d.filtered_targets.clear();
  const std::string values = cli.get("values", "fp16");
  if (values == "fp32") d.values = etk::KVValueType::fp32;
  else if (values == "fp16") d.values = etk::KVValueType::fp16;
  else if (values == "bf16") d.values = etk::KVValueType::bf16;
  else if (values == "int8") d.values = etk::KVValueType::int8;
  else throw std::invalid_argument("--values must be fp32, fp16, bf16 or int8");
  StudyOptions o;
  o.data = cli.data_options();
  o.data.lines = d.short_lines;
  o.long_lines = d.long_set ? d.long_lines : 0;
  o.calib_lines = d.short_calib;
  o.long_calib_lines = d.long_calib;
  o.valid_lines = 0;
  o.progress = false;
  const std::string mdir = model_dir_from_env();
  const Model model = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
  const Dictionary dict = Dictionary::load(mdir + "/ppocr_keys_v1.txt");
  Study study(model, dict, o);
  const std::vector<DecodeStudyRow> rows = decode_study(study, d);
  std::printf("LATTE decode on PP-OCRv4's recorded attention rows (%d heads x dim %d per block, %s value cache)\n\n",
              int(model.heads), int(model.head_dim), values.c_str());
  print_decode_study(rows, stdout);
  return 0;
}

}  // namespace ocr
