// quality.cpp: see quality.hpp.
#include "quality.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace sentence {

namespace {
double dot(const float* a, const float* b, std::size_t d) {
  double s = 0;
  for (std::size_t c = 0; c < d; ++c) s += double(a[c]) * double(b[c]);
  return s;
}
}  // namespace

CosineStats cosine_stats(const float* a, const float* b, std::size_t n, std::size_t d) {
  if (n == 0 || d == 0) throw std::invalid_argument("cosine_stats: no rows");
  CosineStats st{0, 1e300};
  for (std::size_t i = 0; i < n; ++i) {
    const float *x = a + i * d, *y = b + i * d;
    const double den = std::sqrt(dot(x, x, d) * dot(y, y, d));
    const double c = den > 0 ? dot(x, y, d) / den : 0.0;
    st.mean += c;
    st.min = std::min(st.min, c);
  }
  st.mean /= double(n);
  return st;
}

std::vector<std::vector<int>> nearest_neighbours(const float* emb, std::size_t n, std::size_t d, int k) {
  if (k < 1 || std::size_t(k) >= n) throw std::invalid_argument("nearest_neighbours: need 1 <= k < rows");
  std::vector<std::vector<int>> out(n);
  std::vector<double> sim(n);
  std::vector<int> order;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) sim[j] = dot(emb + i * d, emb + j * d, d);
    order.resize(n);
    std::iota(order.begin(), order.end(), 0);
    order.erase(order.begin() + std::ptrdiff_t(i));
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int x, int y) { return sim[std::size_t(x)] > sim[std::size_t(y)] || (sim[std::size_t(x)] == sim[std::size_t(y)] && x < y); });
    out[i].assign(order.begin(), order.begin() + k);
  }
  return out;
}

double retrieval_agreement(const std::vector<std::vector<int>>& reference, const float* emb, std::size_t n,
                           std::size_t d) {
  if (reference.size() != n || n < 2) throw std::invalid_argument("retrieval_agreement: reference and rows differ");
  const int k = int(reference[0].size());
  const auto got = nearest_neighbours(emb, n, d, k);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    int common = 0;
    for (int a : reference[i]) common += int(std::count(got[i].begin(), got[i].end(), a));
    total += double(common) / double(k);
  }
  return total / double(n);
}

LogisticProbe LogisticProbe::train(const float* emb, const std::vector<int>& labels, std::size_t d, int steps,
                                   double learning_rate, double l2) {
  const std::size_t n = labels.size();
  if (n == 0 || d == 0) throw std::invalid_argument("LogisticProbe::train: no rows");
  for (int y : labels)
    if (y != 0 && y != 1) throw std::invalid_argument("LogisticProbe::train: labels must be 0 or 1");
  LogisticProbe p;
  p.w.assign(d + 1, 0.0);
  std::vector<double> grad(d + 1);
  for (int step = 0; step < steps; ++step) {
    std::fill(grad.begin(), grad.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      const double z = p.score(emb + i * d);
      const double err = 1.0 / (1.0 + std::exp(-z)) - double(labels[i]);
      for (std::size_t c = 0; c < d; ++c) grad[c] += err * double(emb[i * d + c]);
      grad[d] += err;
    }
    for (std::size_t c = 0; c <= d; ++c)
      p.w[c] -= learning_rate * (grad[c] / double(n) + (c < d ? l2 * p.w[c] : 0.0));
  }
  return p;
}

double LogisticProbe::score(const float* row) const {
  const std::size_t d = w.size() - 1;
  double z = w[d];
  for (std::size_t c = 0; c < d; ++c) z += w[c] * double(row[c]);
  return z;
}

double LogisticProbe::accuracy(const float* emb, const std::vector<int>& labels) const {
  if (labels.empty()) throw std::invalid_argument("LogisticProbe::accuracy: no rows");
  const std::size_t d = w.size() - 1;
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) right += (score(emb + i * d) > 0) == (labels[i] == 1);
  return double(right) / double(labels.size());
}

}  // namespace sentence
