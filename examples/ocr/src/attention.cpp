// attention.cpp: see attention.hpp.
#include "attention.hpp"

#include <Eigen/Core>
#include <vector>

#include "etk/attention/dense.hpp"
#include "kernels.hpp"

namespace ocr {

void attention_with_probs(const AttentionCall& c, float* probs, const NonlinearityFn* exp_hook) {
  const int H = int(c.q.heads), T = int(c.q.seq);
  if (!exp_hook || !*exp_hook) {  // the float baseline: etk's dense attention
    // etk takes heads as separate [T, dim] blocks; the runner's are interleaved columns of
    // the qkv buffer, so they are gathered (and O scattered) around the call.
    const int D = int(c.q.dim);
    thread_local std::vector<float> buf;
    buf.resize(size_t(4) * H * T * D);
    etk::HeadsView<float> q(buf.data(), H, T, D), k(q.data + H * T * D, H, T, D),
        v(k.data + H * T * D, H, T, D), o(v.data + H * T * D, H, T, D);
    for (int h = 0; h < H; ++h) {
      q.head(h) = c.q.head(h);
      k.head(h) = c.k.head(h);
      v.head(h) = c.v.head(h);
    }
    etk::AttentionParams params;
    params.scale = c.scale;
    etk::dense_attention_with_probs(q, k, v, o, etk::HeadsView<float>(probs, H, T, T), params);
    for (int h = 0; h < H; ++h) c.o.head(h) = o.head(h);
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
