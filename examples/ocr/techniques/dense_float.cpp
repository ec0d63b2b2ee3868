// The float baseline rows: the runner with no hook set (fp32 everywhere, dense
// attention), on the short and the long set. Also the worked example of TECHNIQUES.md.
#include "study.hpp"

ETK_OCR_TECHNIQUE(dense_float, 0) {
  for (ocr::Set set : {ocr::Set::Short, ocr::Set::Long})
    study.add("dense float", "fp32", set, [](ocr::Run& run) {
      run.effect = [] { return ocr::Effect{"bits per value", 32}; };
    });
}
