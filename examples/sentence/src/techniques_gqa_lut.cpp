// techniques_gqa_lut.cpp: GQA-LUT rows: the model's non-linearities replaced by etk's
// shipped 8- and 16-segment piecewise-linear tables (float path), one at a time and all
// three together: exp in both layers' softmax (etk::lut::pwl_eval on the max-shifted
// scores, table on [-8, 0)), the layer norms' 1 / sqrt(var + eps) (etk::lut::pwl_rsqrt,
// range-reduced by the float exponent) and the final layer's tanh (table on [-4, 4)).
#include "etk/lut/pwl.hpp"
#include "etk/lut/pwl_rsqrt.hpp"
#include "etk/lut/tables.hpp"
#include "techniques.hpp"

namespace sentence {

namespace {

using etk::lut::Function;

InPlaceFn table_fn(Function f, int segments) {
  const etk::lut::PwlTable* t = &etk::lut::shipped_table(f, segments).dense;  // static storage
  if (f == Function::rsqrt) return [t](float* x, std::ptrdiff_t n) { etk::lut::pwl_rsqrt(*t, x, x, n); };
  return [t](float* x, std::ptrdiff_t n) { etk::lut::pwl_eval(*t, x, x, n); };
}

void install(EncoderOptions& o, Function f, int segments) {
  const InPlaceFn fn = table_fn(f, segments);
  switch (f) {
    case Function::exp: o.hooks.attention = [fn](const AttentionCall& c) { attention_with(c, fn, {}); }; break;
    case Function::rsqrt: o.hooks.layer_norm_rsqrt = fn; break;
    default: o.hooks.tanh = fn; break;
  }
}

}  // namespace

void gqa_lut_rows(std::vector<Technique>& t) {
  const std::pair<const char*, Function> targets[] = {
      {"exp", Function::exp}, {"rsqrt", Function::rsqrt}, {"tanh", Function::tanh}};
  for (bool all : {false, true})
    for (const auto& target : targets) {
      if (all && target.second != Function::exp) continue;
      for (int segments : {8, 16}) {
        Technique r;
        r.family = all ? "GQA-LUT all three" : std::string("GQA-LUT ") + target.first;
        r.name = std::string("lut-") + (all ? "all" : target.first) + std::to_string(segments);
        r.what = std::to_string(segments) + "-segment tables for " +
                 (all ? std::string("softmax exp, layer-norm rsqrt and tanh")
                      : target.second == Function::exp ? std::string("the softmax exp")
                      : target.second == Function::rsqrt ? std::string("the layer norms' rsqrt") : std::string("the final tanh"));
        r.claim = "GQA-LUT: negligible degradation with INT8 piecewise-linear LUTs for the non-linearities (segmentation)";
        r.effect = Effect{"LUT segments", double(segments)};
        for (const auto& each : targets)
          if (all || each.second == target.second) install(r.options, each.second, segments);
        t.push_back(r);
      }
    }
}

}  // namespace sentence
