// GQA-LUT rows: the model's non-linearities replaced by etk's shipped 8- and 16-segment
// piecewise-linear tables (float path, etk::lut::pwl_eval), one at a time and all
// together. Swish: the neck convs and the transformer MLPs (the runner's one Swish hook
// covers both); HardSwish and HardSigmoid: the backbone; exp: the attention softmaxes
// (inputs shifted to <= 0; the table covers [-8, 0) and its first segment is 0 below);
// rsqrt: LayerNorm's 1 / sqrt(var + eps), range-reduced to [1, 4) by the float exponent
// (etk::lut::pwl_rsqrt), as hardware would.
#include <string>
#include <vector>

#include <etk/lut/pwl.hpp>
#include <etk/lut/pwl_rsqrt.hpp>
#include <etk/lut/tables.hpp>

#include "study.hpp"

namespace {

using etk::lut::Function;

ocr::NonlinearityFn table_fn(Function f, int segments) {
  const etk::lut::PwlTable* t = &etk::lut::shipped_table(f, segments).dense;  // static storage
  return [t](float* x, int64_t n) { etk::lut::pwl_eval(*t, x, x, n); };
}

ocr::NonlinearityFn rsqrt_fn(int segments) {
  const etk::lut::PwlTable* t = &etk::lut::shipped_table(Function::rsqrt, segments).dense;
  return [t](float* x, int64_t n) { etk::lut::pwl_rsqrt(*t, x, x, n); };
}

struct Target {
  const char* label;
  ocr::Nonlinearity kind;
  Function function;
};

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"swish", ocr::Nonlinearity::Swish, Function::silu},
      {"hardswish", ocr::Nonlinearity::HardSwish, Function::hswish},
      {"hardsigmoid", ocr::Nonlinearity::HardSigmoid, Function::hsigmoid},
      {"softmax exp", ocr::Nonlinearity::SoftmaxExp, Function::exp},
      {"layernorm rsqrt", ocr::Nonlinearity::LayerNormRsqrt, Function::rsqrt},
  };
  return t;
}

void install(ocr::Hooks& hooks, const Target& target, int segments) {
  hooks.set(target.kind, target.function == Function::rsqrt ? rsqrt_fn(segments)
                                                            : table_fn(target.function, segments));
}

}  // namespace

ETK_OCR_TECHNIQUE(gqa_lut, 40) {
  for (int segments : {8, 16}) {
    const std::string seg = std::to_string(segments) + " seg";
    for (const Target& target : targets())
      study.add("GQA-LUT", std::string(target.label) + ", " + seg, ocr::Set::Short,
                [segments, &target](ocr::Run& run) {
                  install(run.hooks, target, segments);
                  run.effect = [segments] { return ocr::Effect{"LUT segments", double(segments)}; };
                });
    study.add("GQA-LUT", "all five, " + seg, ocr::Set::Short, [segments](ocr::Run& run) {
      for (const Target& target : targets()) install(run.hooks, target, segments);
      run.effect = [segments] { return ocr::Effect{"LUT segments", double(segments)}; };
    });
  }
  const std::vector<ocr::Quantity> shown = {ocr::Quantity::CharChange, ocr::Quantity::LineChange};
  study.paper_claim("GQA-LUT", "negligible degradation with INT8 piecewise-linear LUTs for the non-linearities (segmentation)",
                    {{"GQA-LUT", "all five, 16 seg", ocr::Set::Short, shown},
                     {"GQA-LUT", "all five, 8 seg", ocr::Set::Short, shown},
                     {"GQA-LUT", "hardswish, 8 seg", ocr::Set::Short, shown}});
}
