// Real-model rows of the quantizers (etk/quant): weights at 8 bits per channel and at 4 bits
// uniform vs PWLQ (+/- bias correction); post-softmax and post-swish activations at 8, 6, 4
// bits, uniform vs two-scaled (V-2SF) in both storage layouts (post-softmax on the short
// and the long set); LayerNorm inputs per tensor vs FQ-ViT PTF vs O-2SF; SmoothQuant with
// bias on vs off for the transformer linears. Weight rows fake-quantize every conv /
// linear (depthwise included) once at build time; activation rows fake-quantize at the
// runner's activation points. Calibration: 16 held-out lines of the row's set (Study::calibration_lines).
#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "etk/quant/observers.hpp"
#include "etk/quant/optimal_levels.hpp"
#include "etk/quant/piecewise_linear.hpp"
#include "etk/quant/smooth_quant.hpp"
#include "etk/quant/two_scaled.hpp"
#include "etk/quant/uniform.hpp"
#include "lazy.hpp"
#include "study.hpp"

namespace {

// 16 held-out lines of the set (its calibration pool, never scored).
std::vector<int> calibration_lines(ocr::Study& study, ocr::Set set = ocr::Set::Short) {
  return study.calibration_lines(set, 16);
}

using ConstView = etk::ConstMatrixView<float>;

// Fake-quantize w [out, k] in place, one grid per output channel.
void fake_quantize_rows(etk::MatrixView<float> w, const etk::QuantParams& p) {
  const etk::RowMatrixXf y = etk::fake_quantize(ConstView(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride())), p);
  w = y;
}

ConstView cview(const etk::RowMatrixXf& m) { return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols()); }

// Calibration data per key (e.g. block), rows appended.
struct Collected {
  std::map<int, etk::RowMatrixXf> data;
  void add(int key, const float* d, int rows, int cols, int max_rows) {
    etk::RowMatrixXf& m = data[key];
    const int have = static_cast<int>(m.rows());
    const int take = std::min(rows, max_rows - have);
    if (take <= 0) return;
    m.conservativeResize(have + take, cols);
    m.bottomRows(take) = etk::matrix_view(d, take, cols, cols);
  }
};

// Collect activations at one point, keyed by block (or LayerNorm index).
std::shared_ptr<Collected> collect(ocr::Study& study, ocr::Point point, int max_rows, ocr::Set set = ocr::Set::Short) {
  auto c = std::make_shared<Collected>();
  ocr::Run probe;
  probe.hooks.transformer_only = true;
  probe.hooks.activation = [c, point, max_rows](const ocr::ActivationSite& s, float* d) {
    if (s.point != point) return;
    const int key = (point == ocr::Point::LayerNormInput || point == ocr::Point::LayerNormOutput) ? s.index : s.block;
    c->add(key, d, s.rows, s.cols, max_rows);
  };
  study.forward(probe, set, calibration_lines(study, set));
  return c;
}

void weight_rows(ocr::Study& study) {
  using W = etk::MatrixView<float>;
  study.add("weights", "8-bit per-channel", ocr::Set::Short, [](ocr::Run& run) {
    run.hooks.weights = [](const ocr::LayerInfo&, W w, float*) {
      fake_quantize_rows(w, etk::per_channel(ConstView(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride())), 0,
                                             [](ConstView c) { return etk::QuantParams::symmetric(c.cwiseAbs().maxCoeff(), 8); }));
    };
    run.effect = [] { return ocr::Effect{"bits per value", 8}; };
  });
  study.add("weights", "4-bit uniform per-channel, min-max", ocr::Set::Short, [](ocr::Run& run) {
    run.hooks.weights = [](const ocr::LayerInfo&, W w, float*) {
      fake_quantize_rows(w, etk::per_channel(ConstView(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride())), 0,
                                             [](ConstView c) { return etk::QuantParams::symmetric(c.cwiseAbs().maxCoeff(), 4); }));
    };
    run.effect = [] { return ocr::Effect{"bits per value", 4}; };
  });
  study.add("weights", "4-bit uniform per-channel, MSE clip", ocr::Set::Short, [](ocr::Run& run) {
    run.hooks.weights = [](const ocr::LayerInfo&, W w, float*) {
      fake_quantize_rows(w, etk::per_channel(ConstView(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride())), 0,
                                             [](ConstView c) { return etk::mse_params(c, etk::CalibSpec{4, true}, 100); }));
    };
    run.effect = [] { return ocr::Effect{"bits per value", 4}; };
  });
  for (bool bc : {false, true})
    study.add("weights", bc ? "4-bit PWLQ per-channel + bias corr." : "4-bit PWLQ per-channel", ocr::Set::Short, [bc](ocr::Run& run) {
      run.hooks.weights = [bc](const ocr::LayerInfo&, W w, float*) {
        const ConstView cw(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride()));
        const etk::PwlqParams p = etk::pwlq_calibrate(cw, 4, 0);
        etk::RowMatrixXf q = etk::pwlq_fake_quantize(cw, p);
        if (bc && w.cols() > 1) q = etk::bias_correct(cw, cview(q), 0);
        w = q;
      };
      run.effect = [] { return ocr::Effect{"bits per value", 5}; };  // 4-bit code + region bit
    });
}

// Squared error of plain uniform b-bit quantization of x on [lo, hi] (lo <= 0 <= hi, zero
// point rounded, round to nearest, clamp), in double: b may be 9 (the paper layout's stored
// bits), beyond the uniform quantizer's 8.
double plain_sse(ConstView x, float lo, float hi, int bits) {
  const double qmax = (1 << bits) - 1, s = (double(hi) - lo) / qmax, zp = std::nearbyint(-lo / s);
  double e = 0;
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      const double v = x(r, c), d = v - (std::min(std::max(std::nearbyint(v / s) + zp, 0.0), qmax) - zp) * s;
      e += d * d;
    }
  return e;
}

// The plain grid's range of a block: [0, 1] after softmax, the calibration range after swish.
using Ranges = std::map<int, std::pair<float, float>>;

// The bound: over every line of a set (float model), per block, the squared error of the
// MSE-optimal quantizer with 2^b levels (etk/quant/optimal_levels.hpp on a 2^14-bin moment
// histogram spanning the block's whole range over the set) and of plain uniform b-bit on
// the plain grid's range, b = 3..9. Computed once per (point, set).
struct Bound {
  std::array<double, 10> optimal{}, plain{};
  double ratio(int bits) const { return plain[size_t(bits)] / std::max(optimal[size_t(bits)], 1e-300); }
};

std::shared_ptr<Bound> measure_bound(ocr::Study& study, ocr::Point point, ocr::Set set, const Ranges& ranges) {
  struct Acc {
    std::mutex m;
    Ranges seen;  // pass 1: every block's range over all lines, so no value falls outside the histogram
    std::map<int, etk::MomentHistogram> hist;
    std::array<double, 10> plain{};
  };
  auto acc = std::make_shared<Acc>();
  ocr::Run probe;
  probe.hooks.transformer_only = true;
  probe.hooks.activation = [acc, point](const ocr::ActivationSite& s, float* d) {
    if (s.point != point) return;
    const auto mm = std::minmax_element(d, d + size_t(s.rows) * size_t(s.cols));
    std::lock_guard<std::mutex> lock(acc->m);
    auto it = acc->seen.emplace(s.block, std::make_pair(*mm.first, *mm.second)).first;
    it->second = {std::min(it->second.first, *mm.first), std::max(it->second.second, *mm.second)};
  };
  study.forward(probe, set);
  probe.hooks.activation = [acc, point, &ranges](const ocr::ActivationSite& s, float* d) {
    if (s.point != point) return;
    const auto range = ranges.at(s.block);  // the plain grid's range
    const ConstView x = etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols);
    std::array<double, 10> e{};
    for (int b = 3; b <= 9; ++b) e[size_t(b)] = plain_sse(x, range.first, range.second, b);
    std::lock_guard<std::mutex> lock(acc->m);
    auto it = acc->hist.find(s.block);
    if (it == acc->hist.end()) {
      const auto all = acc->seen.at(s.block);
      it = acc->hist.emplace(s.block, etk::MomentHistogram(std::min(all.first, 0.0f), std::max(all.second, 1e-30f), 1 << 14)).first;
    }
    it->second.add(d, size_t(s.rows) * size_t(s.cols));
    for (int b = 3; b <= 9; ++b) acc->plain[size_t(b)] += e[size_t(b)];
  };
  study.forward(probe, set);
  auto bound = std::make_shared<Bound>();
  bound->plain = acc->plain;
  for (const auto& kv : acc->hist)
    for (int b = 3; b <= 9; ++b) bound->optimal[size_t(b)] += etk::optimal_levels(kv.second, 1 << b).sse;
  return bound;
}

using BoundCache = ocr::Lazy<Bound, std::pair<int, int>>;  // per (point, set)

std::shared_ptr<const Bound> bound_for(ocr::Study& study, BoundCache& cache, ocr::Point point, ocr::Set set,
                                       const Ranges& ranges) {
  return cache.get({int(point), int(set)}, [&] { return measure_bound(study, point, set, ranges); });
}

// Rows: uniform, two-scaled in the shared-code layout (b stored bits, b-1 payload) and in
// the paper's region-plane layout (b payload bits + 1 region bit). On the two-scaled rows
// the activation hook also measures, on every line's real data, the squared error of the
// two-scaled grid and of plain uniform at its payload bits and at its stored bits, and
// prints the ratios to stderr when the row is done with the bound: plain uniform / the
// best 2^b-level quantizer on the float model's rows of the same set (the bar: >= 10x at
// 8 bits on real softmax rows).
void softmax_swish_rows(ocr::Study& study) {
  auto bounds = std::make_shared<BoundCache>();
  enum Kind { uniform, shared_code, region_plane };
  for (bool swish : {false, true})
    for (ocr::Set set : swish ? std::vector<ocr::Set>{ocr::Set::Short} : std::vector<ocr::Set>{ocr::Set::Short, ocr::Set::Long})
      for (int bits : {8, 6, 4})
        for (Kind kind : {uniform, shared_code, region_plane}) {
          const std::string what = swish ? "post-swish" : "post-softmax";
          const ocr::Point point = swish ? ocr::Point::PostSwish : ocr::Point::PostSoftmax;
          const std::string setting = std::to_string(bits) + (kind == uniform        ? "-bit uniform"
                                                              : kind == shared_code ? "-bit two-scaled (V-2SF)"
                                                                                    : "-bit payload two-scaled (V-2SF) + region bit");
          study.add(what + " activations", setting, set, [&study, bounds, swish, set, bits, kind, point, what, setting](ocr::Run& run) {
            // Softmax: every row of the 16 calibration lines; swish: the first 4096 rows.
            auto data = collect(study, point, swish ? 4096 : 1 << 30, set);
            auto grids = std::make_shared<std::map<int, etk::QuantParams>>();
            auto two_grids = std::make_shared<std::map<int, etk::TwoScaleParams>>();
            auto ranges = std::make_shared<Ranges>();
            for (const auto& kv : data->data) {
              const etk::RowMatrixXf& x = kv.second;
              (*ranges)[kv.first] = swish ? std::make_pair(std::min(x.minCoeff(), 0.0f), std::max(x.maxCoeff(), 0.0f))
                                          : std::make_pair(0.0f, 1.0f);
              (*grids)[kv.first] = etk::QuantParams::from_range(ranges->at(kv.first).first, ranges->at(kv.first).second, bits, false);
              if (kind != uniform)
                (*two_grids)[kv.first] = etk::two_scale_calibrate(
                    cview(x), bits, swish ? etk::TwoScaleKind::post_gelu : etk::TwoScaleKind::post_softmax,
                    kind == shared_code ? etk::TwoScaleLayout::shared_code : etk::TwoScaleLayout::region_plane);
            }
            const int payload = kind == shared_code ? bits - 1 : bits, stored = kind == uniform ? bits : payload + 1;
            std::shared_ptr<const Bound> bound;
            if (kind != uniform) bound = bound_for(study, *bounds, point, set, *ranges);
            auto sse = std::make_shared<std::array<double, 3>>();  // two-scaled, plain at payload bits, at stored bits
            run.hooks.transformer_only = true;
            run.hooks.activation = [grids, two_grids, ranges, kind, point, payload, stored, sse](const ocr::ActivationSite& s, float* d) {
              if (s.point != point) return;
              const ConstView x = etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols);
              const etk::RowMatrixXf y = kind == uniform ? etk::fake_quantize(x, grids->at(s.block))
                                                         : etk::two_scale_fake_quantize(x, two_grids->at(s.block));
              if (kind != uniform) {
                const auto range = ranges->at(s.block);
                (*sse)[0] += (y - x).squaredNorm();
                (*sse)[1] += plain_sse(x, range.first, range.second, payload);
                (*sse)[2] += plain_sse(x, range.first, range.second, stored);
              }
              std::copy(y.data(), y.data() + y.size(), d);
            };
            run.effect = [kind, set, sse, bound, what, setting, payload, stored] {
              if (kind != uniform) {
                const double two = std::max((*sse)[0], 1e-300);
                std::cerr << "quant: " << what << " " << setting << " (" << ocr::set_name(set) << " set, "
                          << (kind == shared_code ? "shared-code" : "region-plane") << " layout, " << payload << " payload + 1 region = "
                          << stored << " stored bits), MSE ratios on every line's real rows: uniform " << payload
                          << "-bit / two-scaled = " << (*sse)[1] / two << ", uniform " << stored << "-bit / two-scaled = " << (*sse)[2] / two
                          << "; bound (float rows): uniform / optimal " << (1 << payload) << "-level = " << bound->ratio(payload)
                          << ", uniform / optimal " << (1 << stored) << "-level = " << bound->ratio(stored) << "\n";
              }
              return ocr::Effect{"bits per value", double(stored)};
            };
          });
        }
}

void layernorm_rows(ocr::Study& study) {
  for (int bits : {8, 6})
    for (int method : {0, 1, 2}) {
      const char* names[] = {"per-tensor", "FQ-ViT PTF", "O-2SF"};
      study.add("LayerNorm input", std::to_string(bits) + "-bit " + names[method], ocr::Set::Short,
                [&study, bits, method](ocr::Run& run) {
                  auto data = collect(study, ocr::Point::LayerNormInput, 4096);
                  auto grids = std::make_shared<std::map<int, etk::QuantParams>>();
                  for (const auto& kv : data->data) {
                    const etk::RowMatrixXf& x = kv.second;
                    (*grids)[kv.first] = method == 0   ? etk::QuantParams::from_range(x.minCoeff(), x.maxCoeff(), bits, false)
                                         : method == 1 ? etk::fqvit_ptf_calibrate(cview(x), bits).quant_params()
                                                       : etk::o2sf_calibrate(cview(x), bits).quant_params();
                  }
                  run.hooks.transformer_only = true;
                  run.hooks.activation = [grids](const ocr::ActivationSite& s, float* d) {
                    if (s.point != ocr::Point::LayerNormInput) return;
                    const etk::RowMatrixXf y =
                        etk::fake_quantize(etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols), grids->at(s.index));
                    std::copy(y.data(), y.data() + y.size(), d);
                  };
                  run.effect = [bits] { return ocr::Effect{"bits per value", double(bits)}; };
                });
    }
}

// Transformer linears at W8A(bits): weights per channel, inputs per tensor (symmetric);
// with SmoothQuant (mode 1) or SQ-b (mode 2) on the linears that follow a LayerNorm (qkv,
// fc1), alpha searched per layer on the calibration inputs.
void smooth_quant_rows(ocr::Study& study) {
  for (int bits : {8, 6})
    for (int mode : {0, 1, 2}) {
      const char* names[] = {"no smoothing", "SmoothQuant", "SQ-b"};
      study.add("transformer linears W8A" + std::to_string(bits), names[mode], ocr::Set::Short, [&study, bits, mode](ocr::Run& run) {
        struct State {
          std::map<std::string, etk::RowMatrixXf> x, w;
          std::map<std::string, etk::SmoothQuantFactors> f;
          std::map<std::string, etk::QuantParams> act;
          std::map<std::string, std::string> role;
        };
        auto st = std::make_shared<State>();
        ocr::Run probe;
        probe.hooks.weights = [st](const ocr::LayerInfo& l, etk::MatrixView<float> w, float*) {
          if (!l.transformer()) return;
          st->w[l.name] = w;
          st->role[l.name] = l.role;
        };
        probe.hooks.activation = [st](const ocr::ActivationSite& s, float* d) {
          if (s.point != ocr::Point::LinearInput || !s.layer->transformer()) return;
          etk::RowMatrixXf& m = st->x[s.layer->name];
          if (m.rows() >= 4096) return;
          const int have = static_cast<int>(m.rows());
          m.conservativeResize(have + s.rows, s.cols);
          m.bottomRows(s.rows) = etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols);
        };
        study.forward(probe, ocr::Set::Short, calibration_lines(study));
        for (auto& kv : st->x) {
          const std::string& role = st->role.at(kv.first);
          const bool smooth = mode > 0 && (role == "qkv" || role == "fc1");  // inputs from a LayerNorm
          const etk::RowMatrixXf& x = kv.second;
          const etk::RowMatrixXf& w = st->w.at(kv.first);
          etk::SmoothQuantFactors f{std::vector<float>(size_t(x.cols()), 1.0f), std::vector<float>(size_t(x.cols()), 0.0f), 0};
          if (smooth) f = etk::smooth_quant_search(cview(x), cview(w), mode == 2, bits, 8);
          st->f[kv.first] = f;
          const etk::RowMatrixXf xs = etk::smooth_activations(cview(x), f);
          st->act[kv.first] = etk::QuantParams::symmetric(xs.cwiseAbs().maxCoeff(), bits);
        }
        run.hooks.transformer_only = true;
        run.hooks.weights = [st](const ocr::LayerInfo& l, etk::MatrixView<float> w, float* bias) {
          if (!l.transformer()) return;
          std::vector<float> b(bias, bias + l.out);
          etk::fold_into_linear(st->f.at(l.name), w, b);
          std::copy(b.begin(), b.end(), bias);
          fake_quantize_rows(w, etk::per_channel(ConstView(w.data(), w.rows(), w.cols(), Eigen::OuterStride<>(w.outerStride())), 0,
                                                 [](ConstView c) { return etk::QuantParams::symmetric(c.cwiseAbs().maxCoeff(), 8); }));
        };
        run.hooks.activation = [st](const ocr::ActivationSite& s, float* d) {
          if (s.point != ocr::Point::LinearInput || !s.layer->transformer()) return;
          const ConstView x = etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols);
          const etk::RowMatrixXf xs = etk::smooth_activations(x, st->f.at(s.layer->name));
          const etk::RowMatrixXf y = etk::fake_quantize(cview(xs), st->act.at(s.layer->name));
          std::copy(y.data(), y.data() + y.size(), d);
        };
        run.effect = [bits] { return ocr::Effect{"bits per value", double(bits)}; };
      });
    }
}

}  // namespace

ETK_OCR_TECHNIQUE(quant, 30) {
  weight_rows(study);
  softmax_swish_rows(study);
  layernorm_rows(study);
  smooth_quant_rows(study);
  using Q = ocr::Quantity;
  study.paper_claim("TSPTQ-ViT", "under 0.5% accuracy drop for 8-bit fully quantized ViTs (ImageNet)",
                    {{"post-softmax activations", "8-bit two-scaled (V-2SF)", ocr::Set::Short, {Q::CharChange, Q::KL}},
                     {"post-softmax activations", "8-bit payload two-scaled (V-2SF) + region bit", ocr::Set::Short,
                      {Q::Effect, Q::CharChange, Q::KL}},
                     {"post-softmax activations", "8-bit uniform", ocr::Set::Short, {Q::KL}},
                     {"post-softmax activations", "4-bit two-scaled (V-2SF)", ocr::Set::Short, {Q::CharChange, Q::KL}},
                     {"post-softmax activations", "4-bit uniform", ocr::Set::Short, {Q::CharChange, Q::KL}}});
  study.paper_claim("PWLQ", "4-bit weights without retraining at nearly full-precision accuracy",
                    {{"weights", "4-bit PWLQ per-channel + bias corr.", ocr::Set::Short, {Q::CharAcc, Q::CharChange}},
                     {"weights", "4-bit PWLQ per-channel", ocr::Set::Short, {Q::CharAcc, Q::CharChange}},
                     {"weights", "4-bit uniform per-channel, min-max", ocr::Set::Short, {Q::CharAcc}}});
}
