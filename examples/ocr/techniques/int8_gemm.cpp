// Real-model row: W8A8 with real integer execution. Every conv (after im2col) and linear
// of PP-OCRv4 runs on etk's int8 GEMM: weights s8 per output channel (symmetric, min-max),
// activations u8 per tensor (asymmetric, min-max calibrated per layer on the whole held-out
// calibration pool, Study::calibration_data: per-tensor min-max ranges need the coverage;
// 16 lines left ranges that unseen lines exceed, -0.35 pp chars), int32 bias at scale
// S_a * S_w, dequantized float output. Depthwise convs (which do not go through the GEMM
// hook) stay float.
#include <cmath>
#include <map>
#include <memory>

#include "etk/quant/int8_gemm.hpp"
#include "etk/quant/observers.hpp"
#include "etk/quant/uniform.hpp"
#include "study.hpp"

namespace {

struct Int8Layer {
  etk::PackedWeightsS8 packed;
  std::vector<float> w_scale;
  etk::QuantParams act;
};

struct Int8Model {
  std::map<std::string, etk::MinMaxObserver> observers;  // per layer, from calibration
  std::map<std::string, Int8Layer> layers;               // built on first use
  std::vector<std::uint8_t> xq;
  std::vector<std::int32_t> bias;
  std::vector<float> out_scale;
  std::vector<int> float_bias;

  Int8Layer& layer(const ocr::GemmArgs& a) {
    auto it = layers.find(a.layer->name);
    if (it != layers.end()) return it->second;
    Int8Layer l;
    const auto w = etk::matrix_view(a.w, a.out, a.k, a.ldw);
    etk::RowMatrix<std::int8_t> codes(a.out, a.k);
    for (int j = 0; j < a.out; ++j) {
      const etk::QuantParams p = etk::QuantParams::symmetric(w.row(j).cwiseAbs().maxCoeff(), 8);
      l.w_scale.push_back(p.scale[0]);
      etk::quantize<std::int8_t>(etk::matrix_view(a.w + int64_t(j) * a.ldw, 1, a.k, a.k), p,
                                 etk::matrix_view(codes.data() + int64_t(j) * a.k, 1, a.k, a.k));
    }
    l.packed = etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(codes.data()), a.out, a.k, a.k));
    l.act = observers.at(a.layer->name).params();
    return layers.emplace(a.layer->name, std::move(l)).first->second;
  }

  void gemm(const ocr::GemmArgs& a) {
    Int8Layer& l = layer(a);
    xq.resize(size_t(a.n) * a.k);
    const auto xv = etk::matrix_view(a.x, a.n, a.k, a.ldx);
    const auto qv = etk::matrix_view(xq.data(), a.n, a.k, a.k);
    etk::quantize<std::uint8_t>(xv, l.act, qv);
    const double sa = l.act.scale[0];
    // int32 bias at scale S_a * S_w[j]; a channel whose bias would not fit the accumulator
    // budget next to K * 255 * 128 (tiny S_w: a near-dead channel) adds it in float.
    const double budget = 2147483647.0 - double(a.k) * 255 * 128;
    bias.assign(size_t(a.out), 0);
    float_bias.clear();
    out_scale.resize(size_t(a.out));
    for (int j = 0; j < a.out; ++j) {
      out_scale[size_t(j)] = static_cast<float>(sa * l.w_scale[size_t(j)]);
      if (!a.bias) continue;
      const double b = std::nearbyint(a.bias[j] / (sa * l.w_scale[size_t(j)]));
      if (std::fabs(b) <= budget) bias[size_t(j)] = static_cast<std::int32_t>(b);
      else float_bias.push_back(j);
    }
    etk::int8_gemm_f32<std::uint8_t>(etk::matrix_view(static_cast<const std::uint8_t*>(xq.data()), a.n, a.k, a.k),
                                     l.act.zero_point[0], l.packed, bias, out_scale,
                                     etk::matrix_view(a.y, a.n, a.out, a.ldy));
    for (int j : float_bias)
      for (int i = 0; i < a.n; ++i) a.y[int64_t(i) * a.ldy + j] += a.bias[j];
  }
};

}  // namespace

ETK_OCR_TECHNIQUE(int8_gemm, 35) {
  study.add("int8 GEMM (W8A8, integer)", "w s8 per-channel, a u8 per-tensor", ocr::Set::Short, [&study](ocr::Run& run) {
    auto m = std::make_shared<Int8Model>();
    ocr::Run probe;
    probe.hooks.activation = [m](const ocr::ActivationSite& s, float* d) {
      if ((s.point != ocr::Point::ConvInput && s.point != ocr::Point::LinearInput) ||
          s.layer->kind == ocr::LayerInfo::Kind::Depthwise)
        return;
      auto it = m->observers.find(s.layer->name);
      if (it == m->observers.end())
        it = m->observers.emplace(s.layer->name, etk::MinMaxObserver(etk::CalibSpec{8, false, true})).first;
      it->second.observe(etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols));
    };
    const int pool = int(study.calibration_data(ocr::Set::Short).size());
    study.forward(probe, ocr::Set::Short, study.calibration_lines(ocr::Set::Short, pool));
    run.hooks.gemm = [m](const ocr::GemmArgs& a) { m->gemm(a); };
    run.effect = [] { return ocr::Effect{"bits per value", 8}; };
  });
  // The claim quant.cpp declares too: the rows of both files are shown together.
  study.paper_claim("TSPTQ-ViT", "under 0.5% accuracy drop for 8-bit fully quantized ViTs (ImageNet)",
                    {{"int8 GEMM (W8A8, integer)", "w s8 per-channel, a u8 per-tensor", ocr::Set::Short,
                      {ocr::Quantity::CharChange, ocr::Quantity::TimeVsFloat}}});
}
