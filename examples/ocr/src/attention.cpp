// attention.cpp: see attention.hpp.
#include "attention.hpp"

#include <Eigen/Core>

#include "etk/attention/dense.hpp"
#include "kernels.hpp"

namespace ocr {

void attention_with_probs(const AttentionCall& c, float* probs, const NonlinearityFn* exp_hook) {
  const int H = int(c.q.heads), T = int(c.q.seq);
  if (!exp_hook || !*exp_hook) {  // the float baseline: etk's dense attention, on the
    // runner's views in place (heads interleaved in the columns of the qkv buffer)
    etk::AttentionParams params;
    params.scale = c.scale;
    etk::dense_attention_with_probs(c.q, c.k, c.v, c.o, etk::HeadsView<float>(probs, H, T, T), params);
    return;
  }
  // A replaced exp: the same computation spelled out, with the hook inside the softmax.
  for (int h = 0; h < H; ++h) {
    auto q = c.q.head(h);
    auto k = c.k.head(h);
    auto v = c.v.head(h);
    auto o = c.o.head(h);
    float* p = probs + int64_t(h) * T * T;
    etk::MatrixView<float> P = etk::matrix_view(p, T, T, T);
    P.noalias() = (q * k.transpose()) * c.scale;
    softmax_rows(p, T, T, exp_hook);
    o.noalias() = P * v;
  }
}

}  // namespace ocr
