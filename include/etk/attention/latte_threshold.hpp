// etk/attention/latte_threshold.hpp: choosing LATTE's per-head thresholds theta_h.
//
//  * Calibration from sample inputs (per head):
//      latte_calibrate_keep_ratio  - the smallest theta keeping at least a target share of
//                                    the visible (query, key) pairs;
//      latte_calibrate_error_budget - the smallest theta (largest cut) whose mean dropped
//                                    probability mass per query row stays <= epsilon.
//    Both use the kernel's own estimate (detail::latte::for_each_estimate_row), so the thresholds
//    mean on the samples exactly what the kernel will do.
//  * Trainable thresholds: a soft mask m_ij = sigmoid((theta_h - mu_ij) / T), where
//    mu_ij = est_max - est_ij is the estimate's logit margin; attention weights are
//    a_ij = m_ij e_ij / sum_k m_ik e_ik with e_ij = exp(s_ij - max s) and s the float
//    scores, so T -> 0 gives the hard kernel (fp32 scores) and theta = +inf dense
//    attention. latte_soft_forward / latte_soft_backward give O and the analytic
//    dL/dtheta_h, dL/dQ, dL/dK, dL/dV from dL/dO (the estimate is piecewise constant in
//    Q and K, so it carries no gradient). latte_train_thresholds runs Adam over theta on
//    loss = mean_h ||O_h - D_h||^2 / ||D_h||^2 + lambda * mean_h (mean soft keep ratio),
//    D the dense output, over calibration batches.
// The soft paths work in double with O(seq * dim) memory per head. The calibrations keep
// every visible pair's margin of a head (8 bytes; 16 with its probability for the error
// budget), so calibrate on a subset of query rows for long sequences.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "etk/attention/latte.hpp"
#include "etk/core/span.hpp"

ETK_BEGIN_NAMESPACE

// One calibration or training sample: Q, K (and V for training) of all heads.
struct LatteSample {
  HeadsView<const float> Q, K, V;
};

namespace detail::latte {

// A float threshold that admits the double margin x: float(x) rounded up if needed.
inline float theta_admitting(double x) {
  float t = static_cast<float>(x);
  if (double(t) < x) t = std::nextafter(t, std::numeric_limits<float>::infinity());
  return t;
}

inline void check_samples(const std::vector<LatteSample>& samples, const LatteParams& base,
                          bool need_v) {
  ETK_CHECK(!samples.empty(), "argument 'samples' is empty");
  const std::ptrdiff_t heads = samples[0].Q.heads;
  for (const LatteSample& s : samples) {
    check::heads_layout("samples.Q", s.Q);
    check::heads_layout("samples.K", s.K);
    check::equal("samples.Q", s.Q.heads, "heads (as the first sample)", heads);
    check::equal("samples.K", s.K.heads, "heads (as Q)", heads);
    check::equal("samples.K", s.K.dim, "dim (as Q)", s.Q.dim);
    if (need_v) {
      check::heads_layout("samples.V", s.V);
      check::equal("samples.V", s.V.heads, "heads (as Q)", heads);
      check::equal("samples.V", s.V.seq, "seq (as K)", s.K.seq);
    }
    check::finite("samples.Q", s.Q);
    check::finite("samples.K", s.K);
    if (need_v) check::finite("samples.V", s.V);
    // The shared attention check (scale, key padding) on the sample's shapes.
    AttentionParams attention = base.attention;
    attention.check_finite = false;
    detail::check_attention(s.Q, s.K, nullptr, attention);
  }
  LatteParams knobs = base;  // thresholds are what the callers compute: not checked
  knobs.theta.assign(1, 0.0f);
  check_knobs(heads, samples[0].Q.dim, knobs);
}

// Calls fn(h, i, n, margins) for every sample, head and query row with n > 0 visible
// keys, margins[j] = 256 * logit * (max_j E_ij - E_ij) in logit units (double).
template <typename Fn>
void for_each_margin_row(const std::vector<LatteSample>& samples, const LatteParams& base,
                         Fn&& fn) {
  Workspace ws;
  std::vector<double> mu;
  for (std::size_t si = 0; si < samples.size(); ++si) {
    const LatteSample& s = samples[si];
    for (std::ptrdiff_t h = 0; h < s.Q.heads; ++h) {
      LatteParams p = base;
      p.theta.assign(1, 0.0f);
      const HeadScales sc = head_scales(p, h, s.Q, s.K);
      const double step = 256.0 * double(sc.logit);
      for_each_estimate_row(s.Q, s.K, p, h, sc, ws,
                            [&](std::ptrdiff_t i, std::ptrdiff_t n, int, const std::int32_t* E,
                                std::int32_t emax, const KeySet& keys) {
                              if (n == 0) return;
                              mu.resize(std::size_t(n));
                              for (std::ptrdiff_t j = 0; j < n; ++j)
                                mu[std::size_t(j)] = double(emax - E[j]) * step;
                              fn(si, h, i, n, mu, keys);
                            });
    }
  }
}

// Softmax probabilities of row i of head h over its n visible keys (positions [0, n) of
// the key set), float scores in double.
inline void dense_probs_row(const LatteSample& s, std::ptrdiff_t h, std::ptrdiff_t i,
                            std::ptrdiff_t n, const KeySet& keys, double scale,
                            std::vector<double>& p) {
  p.resize(std::size_t(n));
  double mx = -std::numeric_limits<double>::infinity();
  const float* q = s.Q.row(h, i);
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    const float* k = s.K.row(h, keys.original(j));
    double acc = 0;
    for (std::ptrdiff_t t = 0; t < s.Q.dim; ++t) acc += double(q[t]) * k[t];
    p[std::size_t(j)] = acc * scale;
    mx = std::max(mx, p[std::size_t(j)]);
  }
  double z = 0;
  for (double& x : p) z += (x = std::exp(x - mx));
  for (double& x : p) x /= z;
}

}  // namespace detail::latte

// Per head, the smallest theta keeping at least keep_ratio of the visible pairs of the
// samples (ties at the cut are kept, so the share may be larger). keep_ratio in (0, 1];
// base supplies the scales, softmax scale and masks the kernel will use.
inline std::vector<float> latte_calibrate_keep_ratio(const std::vector<LatteSample>& samples,
                                                     const LatteParams& base, double keep_ratio) {
  ETK_CHECK(keep_ratio > 0.0 && keep_ratio <= 1.0,
            "argument 'keep_ratio' must be in (0, 1], got " << keep_ratio);
  detail::latte::check_samples(samples, base, false);
  const std::ptrdiff_t heads = samples[0].Q.heads;
  std::vector<std::vector<double>> all(static_cast<std::size_t>(heads));
  detail::latte::for_each_margin_row(samples, base,
                             [&](std::size_t, std::ptrdiff_t h, std::ptrdiff_t, std::ptrdiff_t,
                                 const std::vector<double>& mu, const detail::latte::KeySet&) {
                               auto& a = all[std::size_t(h)];
                               a.insert(a.end(), mu.begin(), mu.end());
                             });
  std::vector<float> theta(static_cast<std::size_t>(heads), 0.0f);
  for (std::size_t h = 0; h < all.size(); ++h) {
    auto& a = all[h];
    if (a.empty()) continue;
    const auto k = static_cast<std::size_t>(std::ceil(keep_ratio * double(a.size()) - 1e-9));
    const std::size_t pos = std::min(a.size(), std::max<std::size_t>(k, 1)) - 1;
    std::nth_element(a.begin(), a.begin() + std::ptrdiff_t(pos), a.end());
    theta[h] = detail::latte::theta_admitting(a[pos]);
  }
  return theta;
}

// Per head, the smallest theta whose dropped probability mass, averaged over the query
// rows of the samples, is <= epsilon (dense float softmax over the visible keys).
// epsilon in [0, 1); epsilon = 0 can still give a finite theta when no mass is dropped.
inline std::vector<float> latte_calibrate_error_budget(const std::vector<LatteSample>& samples,
                                                       const LatteParams& base, double epsilon) {
  ETK_CHECK(epsilon >= 0.0 && epsilon < 1.0,
            "argument 'epsilon' must be in [0, 1), got " << epsilon);
  detail::latte::check_samples(samples, base, false);
  const std::ptrdiff_t heads = samples[0].Q.heads;
  // Per head: (margin, probability) of every visible pair, and the row count.
  std::vector<std::vector<std::pair<double, double>>> all(static_cast<std::size_t>(heads));
  std::vector<double> rows(static_cast<std::size_t>(heads), 0.0), p;
  detail::latte::for_each_margin_row(
      samples, base,
      [&](std::size_t si, std::ptrdiff_t h, std::ptrdiff_t i, std::ptrdiff_t n,
          const std::vector<double>& mu, const detail::latte::KeySet& keys) {
        const LatteSample& s = samples[si];
        const double scale = base.attention.scale == 0.0f ? default_attention_scale(s.Q.dim)
                                                          : base.attention.scale;
        detail::latte::dense_probs_row(s, h, i, n, keys, scale, p);
        for (std::ptrdiff_t j = 0; j < n; ++j)
          all[std::size_t(h)].emplace_back(mu[std::size_t(j)], p[std::size_t(j)]);
        rows[std::size_t(h)] += 1.0;
      });
  std::vector<float> theta(static_cast<std::size_t>(heads), 0.0f);
  for (std::size_t h = 0; h < all.size(); ++h) {
    auto& a = all[h];
    if (a.empty()) continue;
    // Walk cuts from the largest margin down: theta = a margin value drops exactly the
    // pairs with a strictly larger margin.
    std::sort(a.begin(), a.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    double dropped = 0.0, best = a.front().first;
    for (std::size_t e = 0; e < a.size();) {
      const double margin = a[e].first;
      if (dropped / rows[h] > epsilon) break;
      best = margin;  // cutting at this margin drops `dropped`
      while (e < a.size() && a[e].first == margin) dropped += a[e++].second;
    }
    theta[h] = detail::latte::theta_admitting(best);
  }
  return theta;
}

namespace detail::latte {

// The soft forward of one head in double: out [nq, dv] (row-major), keep = sum of m_ij.
// With dO given, also accumulates the backward into dq, dk, dv (same layouts as Q, K, V
// of the head, row-major dense) and returns dL/dtheta and d(sum m)/dtheta.
struct SoftHeadResult {
  double keep_sum = 0, pairs = 0, dtheta = 0, dkeep = 0;
};

inline SoftHeadResult soft_head(const LatteSample& s, const LatteParams& base, std::ptrdiff_t h,
                                double theta, double T, std::vector<double>& out,
                                const double* dO, std::vector<double>* dq,
                                std::vector<double>* dk, std::vector<double>* dv) {
  const std::ptrdiff_t nq = s.Q.seq, d = s.Q.dim, dvd = s.V.dim;
  LatteParams p = base;
  p.theta.assign(1, 0.0f);
  const HeadScales sc = head_scales(p, h, s.Q, s.K);
  const double step = 256.0 * double(sc.logit), scale = sc.softmax_scale;
  out.assign(std::size_t(nq * dvd), 0.0);
  SoftHeadResult res;
  Workspace ws;
  std::vector<double> l, e, m, u;
  for_each_estimate_row(s.Q, s.K, p, h, sc, ws, [&](std::ptrdiff_t i, std::ptrdiff_t n, int,
                                                    const std::int32_t* E, std::int32_t emax,
                                                    const KeySet& keys) {
    if (n == 0) return;
    const float* q = s.Q.row(h, i);
    l.resize(std::size_t(n)), e.resize(std::size_t(n)), m.resize(std::size_t(n));
    double lmax = -std::numeric_limits<double>::infinity();
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::ptrdiff_t t = 0; t < d; ++t) acc += double(q[t]) * s.K.row(h, keys.original(j))[t];
      l[std::size_t(j)] = acc * scale;
      lmax = std::max(lmax, l[std::size_t(j)]);
      const double mu = double(emax - E[j]) * step;
      // sigmoid((theta - mu) / T); theta = +inf gives exactly 1.
      m[std::size_t(j)] = std::isinf(theta) ? 1.0 : 1.0 / (1.0 + std::exp((mu - theta) / T));
    }
    double z = 0;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      e[std::size_t(j)] = std::exp(l[std::size_t(j)] - lmax);
      z += m[std::size_t(j)] * e[std::size_t(j)];
      res.keep_sum += m[std::size_t(j)];
    }
    res.pairs += double(n);
    double* o = out.data() + i * dvd;
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const double a = m[std::size_t(j)] * e[std::size_t(j)] / z;
      const float* vr = s.V.row(h, keys.original(j));
      for (std::ptrdiff_t c = 0; c < dvd; ++c) o[c] += a * vr[c];
    }
    if (!dO) {
      for (std::ptrdiff_t j = 0; j < n; ++j) {
        const double mj = m[std::size_t(j)];
        res.dkeep += std::isinf(theta) ? 0.0 : mj * (1.0 - mj) / T;
      }
      return;
    }
    const double* g = dO + i * dvd;
    double go = 0;
    for (std::ptrdiff_t c = 0; c < dvd; ++c) go += g[c] * o[c];
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const float* vr = s.V.row(h, keys.original(j));
      double uj = 0;
      for (std::ptrdiff_t c = 0; c < dvd; ++c) uj += g[c] * vr[c];
      const double mj = m[std::size_t(j)], ej = e[std::size_t(j)], a = mj * ej / z;
      const double dm = std::isinf(theta) ? 0.0 : mj * (1.0 - mj) / T;  // dm/dtheta
      res.dtheta += ej / z * (uj - go) * dm;
      res.dkeep += dm;
      const double ds = a * (uj - go) * scale;  // dL/d(q.k)
      for (std::ptrdiff_t c = 0; c < dvd; ++c) (*dv)[std::size_t(keys.original(j) * dvd + c)] += a * g[c];
      const float* kr = s.K.row(h, keys.original(j));
      for (std::ptrdiff_t t = 0; t < d; ++t) {
        (*dq)[std::size_t(i * d + t)] += ds * kr[t];
        (*dk)[std::size_t(keys.original(j) * d + t)] += ds * q[t];
      }
    }
  });
  return res;
}

inline void check_soft(const LatteSample& s, Span<float> theta, double T) {
  check::positive_finite("temperature", T);
  ETK_CHECK(theta.size() == s.Q.heads || theta.size() == 1,
            "argument 'theta' must hold 1 or " << s.Q.heads << " thresholds, got "
                                               << theta.size());
  for (float t : theta) ETK_CHECK(t >= 0.0f, "argument 'theta' must be >= 0, got " << t);
}

inline double theta_at(Span<float> theta, std::ptrdiff_t h) {
  return theta.size() == 1 ? theta[0] : theta[h];
}

}  // namespace detail::latte

// Soft-masked LATTE forward (float scores): O [H, Nq, dv]. keep (optional) receives per
// head the mean soft keep ratio (sum of m over visible pairs / their number).
inline void latte_soft_forward(const LatteSample& s, HeadsView<float> O,
                               Span<float> theta, double temperature,
                               const LatteParams& base = {},
                               std::vector<double>* keep = nullptr) {
  detail::latte::check_samples({s}, base, true);
  detail::latte::check_soft(s, theta, temperature);
  check::heads_layout("O", O);
  check::equal("O", O.heads, "heads (as Q)", s.Q.heads);
  check::equal("O", O.seq, "seq (as Q)", s.Q.seq);
  check::equal("O", O.dim, "dim (as V)", s.V.dim);
  if (keep) keep->assign(std::size_t(s.Q.heads), 0.0);
  std::vector<double> out;
  for (std::ptrdiff_t h = 0; h < s.Q.heads; ++h) {
    const auto r = detail::latte::soft_head(s, base, h, detail::latte::theta_at(theta, h), temperature, out,
                                    nullptr, nullptr, nullptr, nullptr);
    for (std::ptrdiff_t i = 0; i < s.Q.seq; ++i)
      for (std::ptrdiff_t c = 0; c < s.V.dim; ++c)
        O.row(h, i)[c] = static_cast<float>(out[std::size_t(i * s.V.dim + c)]);
    if (keep) (*keep)[std::size_t(h)] = r.pairs > 0 ? r.keep_sum / r.pairs : 0.0;
  }
}

// Gradients of a loss L(O) through the soft forward, from dO = dL/dO [H, Nq, dv]:
// dQ, dK, dV (same shapes as Q, K, V) and dtheta (per head).
inline void latte_soft_backward(const LatteSample& s, HeadsView<const float> dO,
                                Span<float> theta, double temperature,
                                HeadsView<float> dQ, HeadsView<float> dK, HeadsView<float> dV,
                                std::vector<double>& dtheta, const LatteParams& base = {}) {
  detail::latte::check_samples({s}, base, true);
  detail::latte::check_soft(s, theta, temperature);
  check::heads_layout("dO", dO);
  check::equal("dO", dO.seq, "seq (as Q)", s.Q.seq);
  check::equal("dO", dO.dim, "dim (as V)", s.V.dim);
  check::equal("dO", dO.heads, "heads (as Q)", s.Q.heads);
  check::finite("dO", dO);
  for (const auto& x : {std::make_pair("dQ", std::make_pair(&dQ, &s.Q)),
                        std::make_pair("dK", std::make_pair(&dK, &s.K)),
                        std::make_pair("dV", std::make_pair(&dV, &s.V))}) {
    check::heads_layout(x.first, *x.second.first);
    check::equal(x.first, x.second.first->heads, "heads", x.second.second->heads);
    check::equal(x.first, x.second.first->seq, "seq", x.second.second->seq);
    check::equal(x.first, x.second.first->dim, "dim", x.second.second->dim);
  }
  dtheta.assign(std::size_t(s.Q.heads), 0.0);
  std::vector<double> out, g, dq, dk, dv;
  const std::ptrdiff_t nq = s.Q.seq, nk = s.K.seq, d = s.Q.dim, dvd = s.V.dim;
  for (std::ptrdiff_t h = 0; h < s.Q.heads; ++h) {
    g.resize(std::size_t(nq * dvd));
    for (std::ptrdiff_t i = 0; i < nq; ++i)
      for (std::ptrdiff_t c = 0; c < dvd; ++c) g[std::size_t(i * dvd + c)] = dO.row(h, i)[c];
    dq.assign(std::size_t(nq * d), 0.0), dk.assign(std::size_t(nk * d), 0.0);
    dv.assign(std::size_t(nk * dvd), 0.0);
    const auto r = detail::latte::soft_head(s, base, h, detail::latte::theta_at(theta, h), temperature, out,
                                    g.data(), &dq, &dk, &dv);
    dtheta[std::size_t(h)] = r.dtheta;
    for (std::ptrdiff_t i = 0; i < nq; ++i)
      for (std::ptrdiff_t t = 0; t < d; ++t) dQ.row(h, i)[t] = float(dq[std::size_t(i * d + t)]);
    for (std::ptrdiff_t j = 0; j < nk; ++j) {
      for (std::ptrdiff_t t = 0; t < d; ++t) dK.row(h, j)[t] = float(dk[std::size_t(j * d + t)]);
      for (std::ptrdiff_t c = 0; c < dvd; ++c) dV.row(h, j)[c] = float(dv[std::size_t(j * dvd + c)]);
    }
  }
}

struct LatteTrainOptions {
  double lambda = 0.1;       // weight of the mean keep ratio in the loss
  double temperature = 0.5;  // soft-mask temperature, logit units
  int steps = 60;            // Adam steps (each over all batches)
  double learning_rate = 0.25;
  float theta_init = 8.0f;   // starting threshold for every head (logits)
};

struct LatteTrainResult {
  std::vector<float> theta;  // per head
  double loss = 0;           // final soft loss
  double rel_error = 0;      // final soft relative output error (mean over heads/batches)
  double keep_ratio = 0;     // final soft keep ratio (mean over heads/batches)
};

// Adam over per-head thresholds on the calibration batches (see the header comment).
inline LatteTrainResult latte_train_thresholds(const std::vector<LatteSample>& batches,
                                               const LatteParams& base,
                                               const LatteTrainOptions& opt = {}) {
  detail::latte::check_samples(batches, base, true);
  ETK_CHECK(opt.lambda >= 0.0 && std::isfinite(opt.lambda),
            "argument 'opt.lambda' must be finite and >= 0, got " << opt.lambda);
  check::positive_finite("opt.temperature", opt.temperature);
  check::positive_finite("opt.learning_rate", opt.learning_rate);
  ETK_CHECK(opt.steps >= 0, "argument 'opt.steps' must be >= 0, got " << opt.steps);
  ETK_CHECK(opt.theta_init >= 0.0f && std::isfinite(opt.theta_init),
            "argument 'opt.theta_init' must be finite and >= 0, got " << opt.theta_init);
  const std::ptrdiff_t H = batches[0].Q.heads;
  const double inf = std::numeric_limits<double>::infinity();
  // Dense targets (theta = +inf) and their squared norms.
  std::vector<std::vector<std::vector<double>>> dense(batches.size());
  for (std::size_t b = 0; b < batches.size(); ++b)
    for (std::ptrdiff_t h = 0; h < H; ++h) {
      std::vector<double> out;
      detail::latte::soft_head(batches[b], base, h, inf, 1.0, out, nullptr, nullptr, nullptr, nullptr);
      dense[b].push_back(std::move(out));
    }
  LatteTrainResult res;
  std::vector<double> theta(std::size_t(H), opt.theta_init), m1(std::size_t(H), 0.0),
      m2(std::size_t(H), 0.0);
  const double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  const double norm = 1.0 / double(H * std::ptrdiff_t(batches.size()));
  for (int step = 0; step <= opt.steps; ++step) {
    std::vector<double> grad(std::size_t(H), 0.0);
    double err_sum = 0, keep_sum = 0;
    for (std::size_t b = 0; b < batches.size(); ++b)
      for (std::ptrdiff_t h = 0; h < H; ++h) {
        const auto& D = dense[b][std::size_t(h)];
        std::vector<double> out, dq, dk, dv;
        const std::ptrdiff_t nq = batches[b].Q.seq, nk = batches[b].K.seq;
        dq.assign(std::size_t(nq * batches[b].Q.dim), 0.0);
        dk.assign(std::size_t(nk * batches[b].Q.dim), 0.0);
        dv.assign(std::size_t(nk * batches[b].V.dim), 0.0);
        // First pass for O, then the loss gradient dL/dO, then the backward.
        detail::latte::soft_head(batches[b], base, h, theta[std::size_t(h)], opt.temperature, out,
                         nullptr, nullptr, nullptr, nullptr);
        double dd = 0, ee = 0;
        std::vector<double> g(out.size());
        for (std::size_t e = 0; e < out.size(); ++e) {
          dd += D[e] * D[e];
          ee += (out[e] - D[e]) * (out[e] - D[e]);
        }
        dd = std::max(dd, 1e-30);
        for (std::size_t e = 0; e < out.size(); ++e) g[e] = 2.0 * (out[e] - D[e]) / dd * norm;
        const auto r = detail::latte::soft_head(batches[b], base, h, theta[std::size_t(h)],
                                        opt.temperature, out, g.data(), &dq, &dk, &dv);
        const double keep = r.pairs > 0 ? r.keep_sum / r.pairs : 0.0;
        grad[std::size_t(h)] += r.dtheta + opt.lambda * norm * (r.pairs > 0 ? r.dkeep / r.pairs : 0.0);
        err_sum += ee / dd * norm;
        keep_sum += keep * norm;
      }
    res.rel_error = err_sum;
    res.keep_ratio = keep_sum;
    res.loss = err_sum + opt.lambda * keep_sum;
    if (step == opt.steps) break;
    for (std::size_t h = 0; h < theta.size(); ++h) {
      m1[h] = beta1 * m1[h] + (1 - beta1) * grad[h];
      m2[h] = beta2 * m2[h] + (1 - beta2) * grad[h] * grad[h];
      const double mh = m1[h] / (1 - std::pow(beta1, step + 1));
      const double vh = m2[h] / (1 - std::pow(beta2, step + 1));
      theta[h] = std::max(0.0, theta[h] - opt.learning_rate * mh / (std::sqrt(vh) + adam_eps));
    }
  }
  for (double t : theta) res.theta.push_back(static_cast<float>(t));
  return res;
}

ETK_END_NAMESPACE
