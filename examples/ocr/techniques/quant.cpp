// Real-model rows of the quantizers (etk/quant): weights at 8 bits per channel and at 4 bits
// uniform vs PWLQ (+/- bias correction); post-softmax and post-swish activations at 8, 6, 4
// bits, uniform vs two-scaled (V-2SF); LayerNorm inputs per tensor vs FQ-ViT PTF vs O-2SF;
// SmoothQuant with bias on vs off for the transformer linears. Weight rows fake-quantize
// every conv / linear (depthwise included) once at build time; activation rows
// fake-quantize at the runner's activation points. Calibration: 16 lines of the short set.
#include <array>
#include <iostream>
#include <map>
#include <memory>

#include "etk/quant/observers.hpp"
#include "etk/quant/piecewise_linear.hpp"
#include "etk/quant/smooth_quant.hpp"
#include "etk/quant/two_scaled.hpp"
#include "etk/quant/uniform.hpp"
#include "study.hpp"

namespace {

std::vector<int> calibration_lines(ocr::Study& study) { return study.calibration_lines(ocr::Set::Short, 16); }

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
std::shared_ptr<Collected> collect(ocr::Study& study, ocr::Point point, int max_rows) {
  auto c = std::make_shared<Collected>();
  ocr::Run probe;
  probe.hooks.transformer_only = true;
  probe.hooks.activation = [c, point, max_rows](const ocr::ActivationSite& s, float* d) {
    if (s.point != point) return;
    const int key = (point == ocr::Point::LayerNormInput || point == ocr::Point::LayerNormOutput) ? s.index : s.block;
    c->add(key, d, s.rows, s.cols, max_rows);
  };
  study.forward(probe, ocr::Set::Short, calibration_lines(study));
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

// On the two-scaled rows the activation hook also measures, on every line's real data,
// the MSE of the two-scaled and of the uniform grid at the same bits, and prints the ratio
// to stderr when the row is done (the bar: >= 10x at 8 bits on real softmax rows).
void softmax_swish_rows(ocr::Study& study) {
  for (bool swish : {false, true})
    for (int bits : {8, 6, 4})
      for (bool two : {false, true}) {
        const std::string what = swish ? "post-swish" : "post-softmax";
        const ocr::Point point = swish ? ocr::Point::PostSwish : ocr::Point::PostSoftmax;
        const std::string setting = std::to_string(bits) + "-bit " + (two ? "two-scaled (V-2SF)" : "uniform");
        study.add(what + " activations", setting, ocr::Set::Short, [&study, swish, bits, two, point, what, setting](ocr::Run& run) {
          auto data = collect(study, point, 4096);
          auto grids = std::make_shared<std::map<int, etk::QuantParams>>();
          auto two_grids = std::make_shared<std::map<int, etk::TwoScaleParams>>();
          for (const auto& kv : data->data) {
            const etk::RowMatrixXf& x = kv.second;
            (*grids)[kv.first] = swish ? etk::QuantParams::from_range(x.minCoeff(), x.maxCoeff(), bits, false)
                                       : etk::QuantParams::from_range(0.0f, 1.0f, bits, false);
            if (two)
              (*two_grids)[kv.first] = etk::two_scale_calibrate(
                  cview(x), bits, swish ? etk::TwoScaleKind::post_gelu : etk::TwoScaleKind::post_softmax);
          }
          auto sse = std::make_shared<std::array<double, 2>>();  // uniform, two-scaled
          run.hooks.transformer_only = true;
          run.hooks.activation = [grids, two_grids, two, point, sse](const ocr::ActivationSite& s, float* d) {
            if (s.point != point) return;
            const ConstView x = etk::matrix_view(static_cast<const float*>(d), s.rows, s.cols, s.cols);
            const etk::RowMatrixXf uni = etk::fake_quantize(x, grids->at(s.block));
            (*sse)[0] += (uni - x).squaredNorm();
            if (!two) {
              std::copy(uni.data(), uni.data() + uni.size(), d);
              return;
            }
            const etk::RowMatrixXf y = etk::two_scale_fake_quantize(x, two_grids->at(s.block));
            (*sse)[1] += (y - x).squaredNorm();
            std::copy(y.data(), y.data() + y.size(), d);
          };
          run.effect = [bits, two, sse, what, setting] {
            if (two)
              std::cerr << "quant: " << what << " " << setting << " on the real rows of every line: MSE uniform / two-scaled = "
                        << (*sse)[0] / std::max((*sse)[1], 1e-300) << "\n";
            return ocr::Effect{"bits per value", double(bits)};
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
                     {"post-softmax activations", "8-bit uniform", ocr::Set::Short, {Q::KL}},
                     {"post-softmax activations", "4-bit two-scaled (V-2SF)", ocr::Set::Short, {Q::CharChange, Q::KL}},
                     {"post-softmax activations", "4-bit uniform", ocr::Set::Short, {Q::CharChange, Q::KL}}});
  study.paper_claim("PWLQ", "4-bit weights without retraining at nearly full-precision accuracy",
                    {{"weights", "4-bit PWLQ per-channel + bias corr.", ocr::Set::Short, {Q::CharAcc, Q::CharChange}},
                     {"weights", "4-bit PWLQ per-channel", ocr::Set::Short, {Q::CharAcc, Q::CharChange}},
                     {"weights", "4-bit uniform per-channel, min-max", ocr::Set::Short, {Q::CharAcc}}});
}
