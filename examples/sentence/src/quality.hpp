// quality.hpp: the sentence encoder's quality measures that do not saturate (issue 15):
//  * cosine to the float embeddings, mean and minimum over sentences;
//  * retrieval agreement: for each sentence, the overlap of its k nearest neighbours (by
//    cosine, itself excluded, brute force) under a technique with those under the float
//    model, |A ∩ B| / k, averaged over sentences;
//  * a linear probe: logistic regression trained on float embeddings of a training split
//    (full-batch gradient descent in double, L2 penalty, fixed steps: deterministic), then
//    its accuracy on any model's embeddings of a held-out split.
// Embeddings are row-major [n, d] floats; the encoder's are unit vectors, so cosine is the
// dot product, but cosine_stats divides by the norms (it also compares unnormalised rows).
#pragma once

#include <cstddef>
#include <vector>

namespace sentence {

struct CosineStats {
  double mean = 0, min = 0;
};
CosineStats cosine_stats(const float* a, const float* b, std::size_t n, std::size_t d);

// The k nearest neighbours of each row (largest dot product, the row itself excluded; a
// tie goes to the lower index), k < n.
std::vector<std::vector<int>> nearest_neighbours(const float* emb, std::size_t n, std::size_t d, int k);
// Mean over rows of |reference[i] ∩ knn_i(emb)| / k, k = reference[i].size().
double retrieval_agreement(const std::vector<std::vector<int>>& reference, const float* emb, std::size_t n,
                           std::size_t d);

struct LogisticProbe {
  std::vector<double> w;  // d weights, then the bias
  // labels: n values, each 0 or 1.
  static LogisticProbe train(const float* emb, const std::vector<int>& labels, std::size_t d, int steps = 500,
                             double learning_rate = 2.0, double l2 = 1e-4);
  double score(const float* row) const;  // the logit
  double accuracy(const float* emb, const std::vector<int>& labels) const;
};

}  // namespace sentence
