// An int8 linear layer from float weights in two calls: quantize and pack the weights once
// (per output channel, bias kept), then run y = x W^T + b with the activations quantized
// per row on the fly and the exact int32 product rescaled to float.
#include <etk/quant/int8_linear.hpp>

#include <cstdio>
#include <random>

int main() {
  const std::ptrdiff_t tokens = 32, in = 256, out = 128;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  etk::RowMatrixXf x(tokens, in), w(out, in);
  Eigen::VectorXf bias(out);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.05f * normal(rng);
  for (Eigen::Index i = 0; i < bias.size(); ++i) bias[i] = normal(rng);

  const auto layer = etk::Int8LinearWeights::from_float(etk::const_view(w), bias,
                                                        etk::WeightGranularity::per_channel);
  etk::RowMatrixXf y(tokens, out);
  etk::int8_linear(etk::const_view(x), layer, etk::mutable_view(y));  // per-row scales

  const etk::RowMatrixXf ref = (x * w.transpose()).rowwise() + bias.transpose();
  const double rel = (y - ref).norm() / ref.norm();
  std::printf("int8 linear vs float: relative error %.3g\n", rel);
  return rel < 0.02 ? 0 : 1;
}
