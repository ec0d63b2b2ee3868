// A user's program: includes the umbrella header, runs dense attention, checks it against
// the reference, and catches etk's error type from a bad call.
#include <etk/attention/reference/dense.hpp>
#include <etk/etk.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  std::printf("etk %s, compiled for %s\n", ETK_VERSION_STRING, etk::compiled_isa());
  const int heads = 2, n = 9, d = 15;
  std::vector<float> q(heads * n * d), k(q.size()), v(q.size()), out(q.size()), ref(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    q[i] = std::sin(0.37f * float(i));
    k[i] = std::cos(0.23f * float(i));
    v[i] = std::sin(0.11f * float(i) + 1.0f);
  }
  etk::HeadsView<const float> qv(q.data(), heads, n, d), kv(k.data(), heads, n, d),
      vv(v.data(), heads, n, d);
  etk::AttentionParams p;
  p.causal = true;
  etk::dense_attention(qv, kv, vv, etk::HeadsView<float>(out.data(), heads, n, d), p);
  etk::reference::dense_attention(qv, kv, vv, etk::HeadsView<float>(ref.data(), heads, n, d), p);
  float err = 0;
  for (std::size_t i = 0; i < out.size(); ++i) err = std::fmax(err, std::fabs(out[i] - ref[i]));
  std::printf("dense attention vs reference: max error %g\n", err);
  if (!(err < 1e-5f)) return 1;
  try {
    etk::dense_attention(qv, etk::HeadsView<const float>(k.data(), 1, n, d), vv,
                         etk::HeadsView<float>(out.data(), heads, n, d));
  } catch (const etk::invalid_argument& e) {
    std::printf("caught: %s\n", e.what());
    return 0;
  }
  return 1;
}
