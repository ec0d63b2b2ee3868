// Real-model row: W8A8 with real integer execution. Every conv (after im2col) and linear
// of PP-OCRv4 runs on etk's int8 GEMM: weights s8 per output channel (symmetric, min-max),
// activations u8 per tensor (asymmetric, min-max calibrated per layer on the whole held-out
// calibration pool, Study::calibration_data: per-tensor min-max ranges need the coverage;
// 16 lines left ranges that unseen lines exceed, -0.35 pp chars): etk::int8_linear_static
// (int32 bias at scale S_a * S_w, dequantized float output). Depthwise convs (which do not
// go through the GEMM hook) stay float.
#include <map>
#include <memory>
#include <string>

#include "etk/quant/int8_linear.hpp"
#include "etk/quant/observers.hpp"
#include "study.hpp"

namespace {

struct Int8Layer {
  etk::Int8LinearWeights weights;
  etk::QuantParams act;
};

struct Int8Model {
  std::map<std::string, etk::MinMaxObserver> observers;  // per layer, from calibration
  std::map<std::string, Int8Layer> layers;               // built on first use

  const Int8Layer& layer(const ocr::GemmArgs& a) {
    auto it = layers.find(a.layer->name);
    if (it != layers.end()) return it->second;
    Int8Layer l{etk::Int8LinearWeights::from_float(etk::matrix_view(a.w, a.out, a.k, a.ldw),
                                                   etk::Span<float>(a.bias, a.bias ? a.out : 0),
                                                   etk::WeightGranularity::per_channel),
                observers.at(a.layer->name).params()};
    return layers.emplace(a.layer->name, std::move(l)).first->second;
  }

  void gemm(const ocr::GemmArgs& a) {
    const Int8Layer& l = layer(a);
    etk::int8_linear_static(etk::matrix_view(a.x, a.n, a.k, a.ldx), l.act, l.weights,
                            etk::matrix_view(a.y, a.n, a.out, a.ldy));
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
