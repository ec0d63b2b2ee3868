// techniques_quant.cpp: the quantizer rows. W8A8 on etk::int8_linear (the encoder's
// LinearKind::w8a8); weights fake-quantized once on a copy of the model (every linear of
// both layers and the final tanh layer; the embedding table stays float) at 8 bits per
// channel, 4 bits uniform per channel (min-max) and 4-bit PWLQ per channel with and without
// bias correction; post-softmax probabilities fake-quantized at 8 / 6 / 4 bits, uniform
// on [0, 1] against two-scaled (V-2SF, shared-code layout), calibrated per layer on the
// probabilities of the first kSentences calibration sentences.
#include <Eigen/Core>
#include <tuple>

#include "etk/quant/observers.hpp"
#include "etk/quant/piecewise_linear.hpp"
#include "etk/quant/two_scaled.hpp"
#include "etk/quant/uniform.hpp"

#include "techniques.hpp"

namespace sentence {

namespace {

constexpr std::size_t kSentences = 48;
using ConstView = etk::ConstMatrixView<float>;
using WeightFn = std::function<etk::RowMatrixXf(ConstView w /* [out, in] */)>;

ConstView cview(const etk::RowMatrixXf& m) { return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols()); }

// A copy of the model with every linear's weights replaced by fn(w) (w as [out, in]).
std::shared_ptr<const UseModel> transform_weights(const UseModel& model, const WeightFn& fn) {
  auto m = std::make_shared<UseModel>(model);
  std::vector<Linear*> all{&m->tanh_layer};
  for (auto& L : m->layers)
    for (Linear* l : {&L.qkv, &L.out, &L.ffn1, &L.ffn2, &L.residual})
      if (!l->w.empty()) all.push_back(l);
  for (Linear* l : all) {
    const etk::RowMatrixXf wt = etk::matrix_view(l->w.data(), l->in, l->out, l->out).transpose();
    const etk::RowMatrixXf q = fn(cview(wt)).transpose();
    std::copy(q.data(), q.data() + q.size(), l->w.begin());
  }
  return m;
}

Technique weight_row(const std::string& name, const std::string& what, double bits, WeightFn fn) {
  Technique t;
  t.family = "weights";
  t.name = name, t.what = what;
  t.claim = "PWLQ: 4-bit weights without retraining at nearly full-precision accuracy";
  t.setup = [fn, bits](RowRun& run, const Calibration& cal) {
    run.model = transform_weights(cal.model, fn);
    run.effect = [bits] { return Effect{"bits per value", bits}; };
  };
  return t;
}

etk::RowMatrixXf uniform_per_channel(ConstView w, int bits) {
  return etk::fake_quantize(w, etk::per_channel(w, 0, [bits](ConstView c) {
                              return etk::QuantParams::symmetric(c.cwiseAbs().maxCoeff(), bits);
                            }));
}

etk::RowMatrixXf pwlq(ConstView w, bool bias_correction) {
  const etk::RowMatrixXf q = etk::pwlq_fake_quantize(w, etk::pwlq_calibrate(w, 4, 0));
  return bias_correction && w.cols() > 1 ? etk::bias_correct(w, cview(q), 0) : q;
}

// Every post-softmax probability of the first kSentences calibration sentences, per layer.
struct SoftmaxSample {
  std::once_flag once;
  std::vector<float> values[2];
  void fill(const Calibration& cal) {
    std::call_once(once, [&] {
      auto m = std::make_shared<std::mutex>();
      EncoderOptions o;
      o.hooks.attention = [this, m](const AttentionCall& c) {
        attention_with(c, {}, [this, m](int layer, float* p, std::ptrdiff_t rows, std::ptrdiff_t cols) {
          std::lock_guard<std::mutex> lock(*m);
          values[layer].insert(values[layer].end(), p, p + rows * cols);
        });
      };
      const std::vector<TokenIds> first(cal.sentences.begin(),
                                        cal.sentences.begin() + std::ptrdiff_t(std::min(kSentences, cal.sentences.size())));
      embed_all(cal.model, o, first);
    });
  }
};

Technique softmax_row(const std::shared_ptr<SoftmaxSample>& sample, int bits, bool two_scaled) {
  Technique t;
  t.family = two_scaled ? "post-softmax two-scaled" : "post-softmax uniform";
  t.name = std::string(two_scaled ? "softmax-2sf" : "softmax-uniform") + std::to_string(bits);
  t.what = std::to_string(bits) + (two_scaled ? "-bit two-scaled (V-2SF, shared code) post-softmax probabilities"
                                              : "-bit uniform post-softmax probabilities on [0, 1]");
  t.claim = "TSPTQ-ViT: under 0.5% accuracy drop for 8-bit fully quantized ViTs (ImageNet)";
  t.setup = [sample, bits, two_scaled](RowRun& run, const Calibration& cal) {
    auto grid = std::make_shared<std::vector<etk::TwoScaleParams>>();
    if (two_scaled) {
      sample->fill(cal);
      for (const auto& v : sample->values)
        grid->push_back(etk::two_scale_calibrate(etk::matrix_view(v.data(), std::ptrdiff_t(v.size()), 1, 1), bits,
                                                 etk::TwoScaleKind::post_softmax));
    }
    const etk::QuantParams plain = etk::QuantParams::from_range(0.0f, 1.0f, bits, false);
    run.options.hooks.attention = [grid, plain, two_scaled](const AttentionCall& c) {
      attention_with(c, {}, [&](int layer, float* p, std::ptrdiff_t rows, std::ptrdiff_t cols) {
        const ConstView x = etk::matrix_view(static_cast<const float*>(p), rows, cols, cols);
        const etk::RowMatrixXf y = two_scaled ? etk::two_scale_fake_quantize(x, (*grid)[std::size_t(layer)])
                                              : etk::fake_quantize(x, plain);
        std::copy(y.data(), y.data() + y.size(), p);
      });
    };
    run.effect = [bits] { return Effect{"bits per value", double(bits)}; };
  };
  return t;
}

}  // namespace

void quant_rows(std::vector<Technique>& t) {
  for (const auto& [name, what, kind] :
       {std::tuple<const char*, const char*, LinearKind>{
            "gemm-f32", "fp32 linears on etk::gemm_f32 with weights packed once (the float row: Eigen)",
            LinearKind::gemm_f32},
        {"w8a8", "W8A8 linears: etk::int8_linear, per-channel s8 weights, per-row s8 activations", LinearKind::w8a8}}) {
    Technique r;
    r.family = "W8A8";
    r.name = name, r.what = what;
    r.options.linears = kind;
    t.push_back(r);
  }
  t.push_back(weight_row("weights-u8", "weights 8-bit uniform per channel", 8,
                         [](ConstView w) { return uniform_per_channel(w, 8); }));
  t.push_back(weight_row("weights-u4", "weights 4-bit uniform per channel (min-max)", 4,
                         [](ConstView w) { return uniform_per_channel(w, 4); }));
  t.push_back(weight_row("weights-pwlq4", "weights 4-bit PWLQ per channel (4-bit code + region bit)", 5,
                         [](ConstView w) { return pwlq(w, false); }));
  t.push_back(weight_row("weights-pwlq4-bc", "weights 4-bit PWLQ per channel + bias correction", 5,
                         [](ConstView w) { return pwlq(w, true); }));
  auto sample = std::make_shared<SoftmaxSample>();
  for (bool two : {false, true})
    for (int bits : {8, 6, 4}) t.push_back(softmax_row(sample, bits, two));
}

}  // namespace sentence
