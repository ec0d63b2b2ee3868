// The float runner against the reference runtime (TensorFlow.js, the committed fixture of
// tools/make-sentence-fixture): identical token ids for every sentence and embeddings with
// mean cosine >= 0.99999 (the bar of issue 15).
#include "sentence_test_util.hpp"

using namespace sentence_test;

TEST_CASE("sentence tokenizer: ids identical to the reference runtime's for every fixture sentence") {
  const auto& f = fixture();
  REQUIRE(f.sentences.size() >= 50);
  for (std::size_t i = 0; i < f.sentences.size(); ++i) {
    INFO("sentence " << i << ": " << f.sentences[i]);
    CHECK(tokenizer().encode(f.sentences[i]) == f.ids[i]);
  }
}

TEST_CASE("sentence encoder: float embeddings match the reference runtime's (mean cosine >= 0.99999)") {
  const auto& f = fixture();
  std::vector<sentence::TokenIds> ids;
  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < f.sentences.size(); i += sanitizer_stride()) {
    ids.push_back(tokenizer().encode(f.sentences[i]));
    which.push_back(i);
  }
  const auto out = embed(ids);
  double sum = 0, worst = 1;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const double c = cosine(out.data() + i * 512, f.embeddings.data() + which[i] * 512, 512);
    sum += c;
    worst = std::min(worst, c);
    // Unit length: the graph's L2 normalisation, to float rounding of a 512-term sum.
    CHECK(std::fabs(cosine(out.data() + i * 512, out.data() + i * 512, 512) - 1.0) < 1e-6);
  }
  const double mean = sum / double(ids.size());
  INFO("mean cosine " << mean << ", min " << worst);
  CHECK(mean >= 0.99999);
  CHECK(worst >= 0.9999);
}
