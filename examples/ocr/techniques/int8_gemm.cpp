// Real-model rows: W8A8 with real integer execution. Every conv (after im2col) and linear
// of PP-OCRv4 runs on etk's int8 GEMM with s8 per-output-channel weights (symmetric,
// min-max); depthwise convs (which do not go through the GEMM hook) stay float. The
// activation side is what the rows compare, all calibrated on the short set's held-out
// pool (Study::calibration_data, 64 Reuters lines in DejaVu) and scored on the short set
// AND on the check set (another text, other fonts: Study's Set::Check):
//   * static per-tensor u8 ranges (etk::int8_linear_static on a prepared etk::Int8StaticLayer):
//     min-max over the whole pool; percentile 99.99 of each tail; the MSE-optimal and the
//     KL (TensorRT) clip of |x| (etk::mse_params / etk::kl_params) applied to both tails.
//     Clip calibrators see a sample of at most kSampleRows rows per layer.
//   * per-token (per-row) dynamic s8 scales (etk::int8_linear): no calibration at all.
//   * SmoothQuant-b (etk::smooth_quant_factors, alpha 0.5, from the exact per-column
//     min/max of the pool): x' = (x - d) / s before quantization, W' = W s, b' = b + W d.
//   * bias correction: b' = b - (Wq - W) E[x], E[x] the pool's per-column mean.
// The row named "int8 GEMM (W8A8, integer)" is the kept configuration (the one
// tools/bench-vs-onnxruntime times): static percentile-99.99 ranges, the best on the check
// set and the fastest (docs/accuracy.md). The others are technique int8_gemm_variants.
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "etk/quant/int8_linear.hpp"
#include "etk/quant/observers.hpp"
#include "etk/quant/smooth_quant.hpp"
#include "lazy.hpp"
#include "study.hpp"

namespace {

constexpr int kSampleRows = 1024;  // rows per layer the clip calibrators see

enum class ActRange { MinMax, Percentile, Mse, Kl, PerToken };

struct Variant {
  ActRange range = ActRange::Percentile;
  bool smooth = false;     // SmoothQuant-b
  bool bias_corr = false;  // bias correction of the weight error
};

// What the calibration pool says about one layer's input.
struct LayerStats {
  std::vector<float> lo, hi;  // per column
  std::vector<double> sum;    // per column
  long long rows = 0;
  etk::RowMatrixXf sample;    // up to kSampleRows rows (reservoir, fixed seed): the first `kept`
  std::ptrdiff_t kept = 0;
  std::mt19937 gen{7};
  etk::RowMatrixXf w;         // the layer's float weights [out, k] and bias (empty: none)
  std::vector<float> bias;
  void observe(etk::ConstMatrixView<float> x) {
    const std::ptrdiff_t k = x.cols();
    if (lo.empty()) {
      lo.assign(size_t(k), std::numeric_limits<float>::infinity());
      hi.assign(size_t(k), -std::numeric_limits<float>::infinity());
      sum.assign(size_t(k), 0.0);
      sample.resize(kSampleRows, k);
    }
    for (std::ptrdiff_t i = 0; i < x.rows(); ++i, ++rows) {
      for (std::ptrdiff_t j = 0; j < k; ++j) {
        lo[size_t(j)] = std::min(lo[size_t(j)], x(i, j));
        hi[size_t(j)] = std::max(hi[size_t(j)], x(i, j));
        sum[size_t(j)] += x(i, j);
      }
      if (kept < kSampleRows) {
        sample.row(kept++) = x.row(i);
      } else {
        const long long r = std::uniform_int_distribution<long long>(0, rows)(gen);
        if (r < kSampleRows) sample.row(std::ptrdiff_t(r)) = x.row(i);
      }
    }
  }
};
using Calibration = std::map<std::string, LayerStats>;

// Each GEMM's input as the GEMM sees it (a conv's im2col rows, a linear's tokens) over the
// whole pool; the probe computes the float product itself.
std::shared_ptr<Calibration> calibrate(ocr::Study& study) {
  auto cal = std::make_shared<Calibration>();
  ocr::Run probe;
  probe.hooks.gemm = [cal](const ocr::GemmArgs& a) {
    const auto x = etk::matrix_view(a.x, a.n, a.k, a.ldx);
    LayerStats& st = (*cal)[a.layer->name];
    if (st.w.size() == 0) {
      st.w = etk::matrix_view(a.w, a.out, a.k, a.ldw);
      if (a.bias) st.bias.assign(a.bias, a.bias + a.out);
    }
    st.observe(x);
    auto y = etk::matrix_view(a.y, a.n, a.out, a.ldy);
    y.noalias() = x * etk::matrix_view(a.w, a.out, a.k, a.ldw).transpose();
    if (a.bias)
      for (int i = 0; i < a.n; ++i)
        for (int j = 0; j < a.out; ++j) y(i, j) += a.bias[j];
  };
  const int pool = int(study.calibration_data(ocr::Set::Short).size());
  study.forward(probe, ocr::Set::Short, study.calibration_lines(ocr::Set::Short, pool));
  return cal;
}

// The u8 grid [lo, hi] (widened to hold 0, as QuantParams::from_range does).
etk::QuantParams u8_range(float lo, float hi) { return etk::QuantParams::from_range(lo, hi, 8, false); }

struct Layer {
  etk::Int8LinearWeights weights;
  etk::Int8StaticEpilogue epilogue;   // static ranges only
  std::vector<float> shift, inv_smooth;  // SmoothQuant-b only
};

class Int8Model {
 public:
  // Every layer prepared here, in the row's setup (not in the timed run).
  Int8Model(Variant v, const Calibration& cal) : v_(v) {
    for (const auto& c : cal) layers_.emplace(c.first, build(c.second));
  }

  void gemm(const ocr::GemmArgs& a) const {
    const Layer& l = layers_.at(a.layer->name);
    auto x = etk::matrix_view(a.x, a.n, a.k, a.ldx);
    auto y = etk::matrix_view(a.y, a.n, a.out, a.ldy);
    etk::RowMatrixXf smoothed;
    if (v_.smooth) {
      smoothed.resize(a.n, a.k);
      for (int i = 0; i < a.n; ++i)
        for (int j = 0; j < a.k; ++j)
          smoothed(i, j) = (x(i, j) - l.shift[size_t(j)]) * l.inv_smooth[size_t(j)];
    }
    const etk::ConstMatrixView<float> in =
        v_.smooth ? etk::matrix_view(static_cast<const float*>(smoothed.data()), a.n, a.k, a.k) : x;
    if (v_.range == ActRange::PerToken) etk::int8_linear(in, l.weights, y);
    else etk::int8_linear_static(in, l.epilogue, l.weights, y);
  }

 private:
  Layer build(const LayerStats& st) const {
    const int out = int(st.w.rows()), k = int(st.w.cols());
    etk::RowMatrixXf w = st.w;
    std::vector<float> bias = st.bias;
    if (bias.empty()) bias.assign(size_t(out), 0.0f);
    std::vector<float> lo = st.lo, hi = st.hi;
    std::vector<double> mean(static_cast<size_t>(k));
    for (int j = 0; j < k; ++j) mean[size_t(j)] = st.sum[size_t(j)] / double(std::max(1LL, st.rows));
    etk::RowMatrixXf sample = st.sample.topRows(st.kept);
    Layer l;
    if (v_.smooth) {
      // The exact per-column extremes of the pool as a 2-row "calibration set".
      etk::RowMatrixXf ext(2, k);
      for (int j = 0; j < k; ++j) ext(0, j) = lo[size_t(j)], ext(1, j) = hi[size_t(j)];
      const etk::SmoothQuantFactors f = etk::smooth_quant_factors(
          etk::matrix_view(static_cast<const float*>(ext.data()), 2, k, k),
          etk::matrix_view(static_cast<const float*>(w.data()), out, k, k), 0.5f, true);
      etk::fold_into_linear(f, etk::matrix_view(w.data(), out, k, k), bias);
      l.shift = f.shift;
      for (int j = 0; j < k; ++j) {
        const float s = f.smooth[size_t(j)];
        l.inv_smooth.push_back(1.0f / s);
        lo[size_t(j)] = (lo[size_t(j)] - f.shift[size_t(j)]) / s;
        hi[size_t(j)] = (hi[size_t(j)] - f.shift[size_t(j)]) / s;
        mean[size_t(j)] = (mean[size_t(j)] - f.shift[size_t(j)]) / s;
        sample.col(j) = ((sample.col(j).array() - f.shift[size_t(j)]) / s).matrix();
      }
    }
    const auto wv = etk::matrix_view(static_cast<const float*>(w.data()), out, k, k);
    if (v_.bias_corr) {
      const etk::RowMatrixXf wq =
          etk::fake_quantize(wv, etk::Int8LinearWeights::weight_grid(wv, etk::WeightGranularity::per_channel));
      for (int o = 0; o < out; ++o) {
        double e = 0;
        for (int j = 0; j < k; ++j) e += double(wq(o, j) - w(o, j)) * mean[size_t(j)];
        bias[size_t(o)] -= float(e);
      }
    }
    const bool any_bias = !st.bias.empty() || v_.smooth || v_.bias_corr;
    l.weights = etk::Int8LinearWeights::from_float(wv, etk::Span<float>(bias.data(), any_bias ? out : 0),
                                                   etk::WeightGranularity::per_channel);
    if (v_.range != ActRange::PerToken) {
      const float mn = *std::min_element(lo.begin(), lo.end()), mx = *std::max_element(hi.begin(), hi.end());
      const auto sv = etk::matrix_view(static_cast<const float*>(sample.data()), sample.rows(), k, k);
      etk::QuantParams grid;
      if (v_.range == ActRange::MinMax) {
        grid = u8_range(mn, mx);
      } else if (v_.range == ActRange::Percentile) {
        std::vector<float> v(sample.data(), sample.data() + sample.size());
        std::sort(v.begin(), v.end());
        const auto at = [&v](double q) { return v[size_t(q * double(v.size() - 1))]; };
        grid = u8_range(at(1e-4), at(1 - 1e-4));
      } else {
        const etk::CalibSpec spec{8, true};
        const etk::QuantParams clip = v_.range == ActRange::Mse ? etk::mse_params(sv, spec, 50) : etk::kl_params(sv, spec);
        const float alpha = clip.scale[0] * 127.0f;
        grid = u8_range(std::max(mn, -alpha), std::min(mx, alpha));
      }
      l.epilogue = etk::Int8StaticEpilogue::prepare(grid, l.weights);
    }
    return l;
  }

  Variant v_;
  std::map<std::string, Layer> layers_;
};

// A row's setup: the shared calibration, then the variant's integer GEMM hook.
ocr::Study::Setup setup(ocr::Study& study, std::shared_ptr<ocr::Lazy<Calibration>> cal, Variant v) {
  return [&study, cal, v](ocr::Run& run) {
    auto m = std::make_shared<const Int8Model>(v, *cal->get([&study] { return calibrate(study); }));
    run.hooks.gemm = [m](const ocr::GemmArgs& a) { m->gemm(a); };
    run.effect = [] { return ocr::Effect{"bits per value", 8}; };
  };
}

const char* const kKept = "w s8 per-channel, a u8 per-tensor, percentile 99.99";

}  // namespace

ETK_OCR_TECHNIQUE(int8_gemm, 35) {
  auto cal = std::make_shared<ocr::Lazy<Calibration>>();
  study.add("int8 GEMM (W8A8, integer)", kKept, ocr::Set::Short, setup(study, cal, Variant{ActRange::Percentile, false, false}));
  // The claim quant.cpp declares too: the rows of both files are shown together.
  study.paper_claim("TSPTQ-ViT", "under 0.5% accuracy drop for 8-bit fully quantized ViTs (ImageNet)",
                    {{"int8 GEMM (W8A8, integer)", kKept, ocr::Set::Short,
                      {ocr::Quantity::CharChange, ocr::Quantity::TimeVsFloat}},
                     {"int8 GEMM (W8A8, integer)", kKept, ocr::Set::Check,
                      {ocr::Quantity::CharChange, ocr::Quantity::LineChange}}});
}

ETK_OCR_TECHNIQUE(int8_gemm_variants, 36) {
  auto cal = std::make_shared<ocr::Lazy<Calibration>>();
  const std::vector<std::pair<std::string, Variant>> variants = {
      {"a u8 per-tensor, min-max", {ActRange::MinMax, false, false}},
      {"a s8 per-token dynamic", {ActRange::PerToken, false, false}},
      {"a u8 per-tensor, MSE clip", {ActRange::Mse, false, false}},
      {"a u8 per-tensor, KL clip", {ActRange::Kl, false, false}},
      {"a u8 per-tensor, min-max, SmoothQuant-b", {ActRange::MinMax, true, false}},
      {"a u8 per-tensor, min-max, bias corr.", {ActRange::MinMax, false, true}},
      {"a s8 per-token, SmoothQuant-b", {ActRange::PerToken, true, false}},
      {"a s8 per-token, bias corr.", {ActRange::PerToken, false, true}},
  };
  for (const auto& v : variants)
    study.add("W8A8 variant (int8 GEMM)", "w s8 per-channel, " + v.first, ocr::Set::Short, setup(study, cal, v.second));
}
