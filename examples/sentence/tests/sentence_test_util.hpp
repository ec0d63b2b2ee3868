// sentence_test_util.hpp: shared set-up of the sentence encoder tests: the model and the
// tokenizer from the etk cache (a clear failure when missing), the committed fixture of
// the reference runtime, and cosine similarity.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "encoder.hpp"
#include "paths.hpp"
#include "reuters.hpp"
#include "tokenizer.hpp"

namespace sentence_test {

// Under AddressSanitizer (the CI's -O1 sanitizer pass, scalar Eigen) a forward pass costs
// ~100x the release one; the tests that embed many sentences take every
// `sanitizer_stride()`-th one there (the release pass runs them all).
#if defined(__SANITIZE_ADDRESS__)
inline std::size_t sanitizer_stride() { return 9; }
#else
inline std::size_t sanitizer_stride() { return 1; }
#endif

inline const std::string& model_dir() {
  static const std::string dir = [] {
    try {
      return sentence::model_dir_from_env();
    } catch (const std::exception& e) {
      FAIL(e.what());
      return std::string();
    }
  }();
  return dir;
}

inline const sentence::UseModel& model() {
  static const sentence::UseModel m = sentence::load_use_lite(model_dir() + "/model.json");
  return m;
}

inline const sentence::Tokenizer& tokenizer() {
  static const sentence::Tokenizer t = sentence::Tokenizer::from_file(model_dir() + "/vocab.json");
  return t;
}

// tools/make-sentence-fixture's output: sentences, the reference's ids and embeddings.
struct Fixture {
  std::vector<std::string> sentences;
  std::vector<sentence::TokenIds> ids;
  std::vector<float> embeddings;  // [sentences, 512]
};

inline const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    const std::string dir = ETK_SENTENCE_FIXTURES;
    const auto j = nlohmann::json::parse(examples::read_file(dir + "/reference.json"));
    x.sentences = j.at("sentences").get<std::vector<std::string>>();
    x.ids = j.at("ids").get<std::vector<sentence::TokenIds>>();
    const std::string raw = examples::read_file(dir + "/reference.f32");
    REQUIRE(raw.size() == x.sentences.size() * 512 * sizeof(float));
    x.embeddings.resize(raw.size() / sizeof(float));
    std::memcpy(x.embeddings.data(), raw.data(), raw.size());
    return x;
  }();
  return f;
}

inline double cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

inline std::vector<float> embed(const std::vector<sentence::TokenIds>& ids, const etk::Context& ctx = {},
                                int chunk_tokens = 256) {
  const sentence::Encoder enc(model(), chunk_tokens);
  std::vector<float> out(ids.size() * std::size_t(enc.embedding_dim()));
  enc.embed(ids, out.data(), ctx);
  return out;
}

}  // namespace sentence_test
