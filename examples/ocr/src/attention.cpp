// attention.cpp: see attention.hpp.
#include "attention.hpp"

#include <Eigen/Core>

#include "kernels.hpp"

namespace ocr {

void attention_with_probs(const AttentionCall& c, float* probs, const NonlinearityFn* exp_hook) {
  const int H = int(c.q.heads), T = int(c.q.seq);
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
