// The float runner against a plain double-precision reference of use_model.hpp's
// computation (one sentence at a time, naive loops, explicit softmax), and its batching
// and threading contracts: any thread count gives bit-identical results; a sentence's
// embedding does not depend on the sentences batched with it beyond float rounding.
#include <algorithm>
#include <random>

#include "sentence_test_util.hpp"

using namespace sentence_test;

namespace {

using Vec = std::vector<double>;

// y [n, out] = x [n, in] w + b, in double.
Vec ref_linear(const sentence::Linear& l, const Vec& x, std::size_t n) {
  Vec y(n * std::size_t(l.out));
  for (std::size_t r = 0; r < n; ++r)
    for (int o = 0; o < l.out; ++o) {
      double s = l.b[std::size_t(o)];
      for (int i = 0; i < l.in; ++i) s += x[r * std::size_t(l.in) + std::size_t(i)] * l.w[std::size_t(i) * std::size_t(l.out) + std::size_t(o)];
      y[r * std::size_t(l.out) + std::size_t(o)] = s;
    }
  return y;
}

Vec ref_layer_norm(const sentence::LayerNorm& ln, const Vec& x, std::size_t n, std::size_t w) {
  Vec y(x.size());
  for (std::size_t r = 0; r < n; ++r) {
    double mean = 0, var = 0;
    for (std::size_t c = 0; c < w; ++c) mean += x[r * w + c];
    mean /= double(w);
    for (std::size_t c = 0; c < w; ++c) var += (x[r * w + c] - mean) * (x[r * w + c] - mean);
    var /= double(w);
    for (std::size_t c = 0; c < w; ++c)
      y[r * w + c] = (x[r * w + c] - mean) / std::sqrt(var + ln.eps) * ln.scale[c] + ln.bias[c];
  }
  return y;
}

Vec ref_layer(const sentence::TransformerLayer& L, const Vec& x, std::size_t n) {
  const std::size_t win = std::size_t(L.width_in), w = std::size_t(L.width), hd = std::size_t(L.head_dim);
  const Vec qkv = ref_linear(L.qkv, ref_layer_norm(L.ln_attention, x, n, win), n);
  Vec ctx(n * win, 0.0);
  for (std::size_t h = 0; h < std::size_t(L.heads); ++h)
    for (std::size_t i = 0; i < n; ++i) {
      Vec logit(n);
      double top = -1e300;
      for (std::size_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::size_t c = 0; c < hd; ++c) s += qkv[i * 3 * win + h * hd + c] * qkv[j * 3 * win + win + h * hd + c];
        logit[j] = s / std::sqrt(double(hd));
        top = std::max(top, logit[j]);
      }
      double z = 0;
      for (double& v : logit) z += (v = std::exp(v - top));
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t c = 0; c < hd; ++c) ctx[i * win + h * hd + c] += logit[j] / z * qkv[j * 3 * win + 2 * win + h * hd + c];
    }
  Vec out = ref_linear(L.out, ctx, n);
  const Vec res = win != w ? ref_linear(L.residual, x, n) : x;
  for (std::size_t k = 0; k < out.size(); ++k) out[k] += res[k];
  Vec hidden = ref_linear(L.ffn1, ref_layer_norm(L.ln_ffn, out, n, w), n);
  for (double& v : hidden) v = std::max(v, 0.0);
  const Vec f = ref_linear(L.ffn2, hidden, n);
  for (std::size_t k = 0; k < out.size(); ++k) out[k] += f[k];
  return out;
}

std::vector<double> ref_embed(const sentence::UseModel& m, sentence::TokenIds ids) {
  if (ids.size() > std::size_t(m.max_tokens)) ids.resize(std::size_t(m.max_tokens));
  const std::size_t n = ids.size(), d = std::size_t(m.model_dim);
  Vec x(n * d);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t c = 0; c < d / 2; ++c) {
      const double a = double(j) * m.inv_timescales[c];
      const double e0 = m.embedding[std::size_t(ids[j]) * d + c], e1 = m.embedding[std::size_t(ids[j]) * d + d / 2 + c];
      x[j * d + c] = 2 * e0 + std::sin(a);
      x[j * d + d / 2 + c] = 2 * e1 + std::cos(a);
    }
  x = ref_layer(m.layers[0], x, n);
  x = ref_layer(m.layers[1], x, n);
  const std::size_t w = std::size_t(m.layers[1].width);
  Vec pooled(w, 0.0);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t c = 0; c < w; ++c) pooled[c] += x[j * w + c] / double(std::max<std::size_t>(n, 1));
  Vec y = ref_linear(m.tanh_layer, pooled, 1);
  double ss = 0;
  for (double& v : y) ss += (v = std::tanh(v)) * v;
  for (double& v : y) v /= std::sqrt(std::max(ss, double(m.l2_floor)));
  return y;
}

// The fixture's sentences of at most max_tokens tokens, at most count of them.
std::vector<sentence::TokenIds> fixture_ids(std::size_t count, std::size_t max_tokens) {
  std::vector<sentence::TokenIds> ids;
  for (const auto& s : fixture().sentences) {
    auto t = tokenizer().encode(s);
    if (t.size() <= max_tokens && ids.size() < count) ids.push_back(std::move(t));
  }
  REQUIRE(ids.size() == count);
  return ids;
}

}  // namespace

TEST_CASE("sentence encoder: float runner vs the plain double reference") {
  // Short sentences keep the naive reference fast; lengths 1, 2, a few and a real one.
  std::vector<sentence::TokenIds> ids = {{11}, {7, 9}, {34, 1631, 13, 7, 207}, fixture_ids(1, 24)[0]};
  const auto out = embed(ids);
  for (std::size_t s = 0; s < ids.size(); ++s) {
    const auto ref = ref_embed(model(), ids[s]);
    // float32 against double: each output sums at most 1536 products per linear layer
    // through 2 layers + pooling + tanh; relative rounding ~ sqrt(K) * 2^-24 per layer
    // (1e-5 at most over the chain) on unit-norm outputs with entries below 1.
    double worst = 0;
    for (std::size_t c = 0; c < 512; ++c) worst = std::max(worst, std::fabs(ref[c] - out[s * 512 + c]));
    INFO("sentence " << s << " (" << ids[s].size() << " tokens): max |diff| " << worst);
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("sentence encoder: threads give bit-identical results; batching changes only rounding") {
  const auto ids = fixture_ids(8, 40);
  const auto one = embed(ids, {}, 64);  // small chunks: many tasks
  etk::SimpleThreadPool pool(3);
  etk::Context ctx;
  ctx.pool = &pool;
  CHECK(embed(ids, ctx, 64) == one);
  // Other chunkings and each sentence alone: the same embeddings to float rounding.
  for (int chunk : {1, 1000}) {
    const auto other = embed(ids, {}, chunk);
    for (std::size_t s = 0; s < ids.size(); ++s) CHECK(cosine(one.data() + s * 512, other.data() + s * 512, 512) > 1 - 1e-9);
  }
}

TEST_CASE("sentence encoder: empty sentences, clipping, bad ids") {
  const auto& m = model();
  // Empty: pooled = 0, so the embedding is the normalised tanh of the tanh layer's bias.
  const auto e = embed({{}});
  double ss = 0;
  for (float b : m.tanh_layer.b) ss += std::tanh(double(b)) * std::tanh(double(b));
  for (std::size_t c = 0; c < 512; ++c) CHECK(e[c] == Approx(std::tanh(double(m.tanh_layer.b[c])) / std::sqrt(ss)).margin(1e-6));
  // Ids past 128 are dropped.
  sentence::TokenIds longer(200, 9);
  for (std::size_t i = 0; i < longer.size(); ++i) longer[i] = std::int32_t(6 + i);
  const sentence::TokenIds clipped(longer.begin(), longer.begin() + 128);
  const auto a = embed({longer}), b = embed({clipped});
  CHECK(a == b);
  // Out-of-range ids are rejected naming the sentence.
  const sentence::Encoder enc(m);
  std::vector<float> out(2 * 512);
  CHECK_THROWS_WITH(enc.embed({{5}, {8002}}, out.data()), Catch::Matchers::Contains("sentence 1") &&
                                                               Catch::Matchers::Contains("8002"));
  CHECK_THROWS_AS(enc.embed({{-1}}, out.data()), etk::invalid_argument);
  CHECK_THROWS_AS(sentence::Encoder(m, 0), etk::invalid_argument);
}
