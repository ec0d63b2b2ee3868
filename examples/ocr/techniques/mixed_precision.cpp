// Mixed-precision weights and activation compression on PP-OCRv4 (etk/search).
//
// Weights: every conv and linear (47 tensors) gets a width in {8,6,5,4,3,2}, per output
// channel symmetric (etk/quant MinMaxObserver + fake_quantize). Sensitivity: each tensor
// alone at each width, KL vs float on 8 calibration lines (cached, so the 4/5/6-bit
// budgets and both searches share one table); Greedy MP and the exact DP at an average of
// 4, 5 and 6 bits (parameter-weighted), against uniform widths at the same average; each
// chosen configuration is checked with the real forward pass on the calibration lines.
// Activations: the five LayerNorm outputs of the transformer (inputs of qkv, fc1 and the
// head) go through the codec (real byte buffers; the effect column is the measured bits
// per value). Candidates per site: keep all 120 channels or project to 96/72/48/24 (PCA
// or compression-aware against the consuming linear), times an average width of
// 8/6/4/3/2 in groups of 12 channels; the damage of each is measured alone and the greedy
// layer-wise allocation meets 2x, 3x and 4x fewer bytes than int8 activations.
// The weight search's evaluations quantize one tensor (or, for the final checks, a few):
// they resume from the float activations saved before the first changed layer
// (src/prefix_cache.hpp), in a working copy of the model where only that layer is
// re-packed, on 2 threads; the damage is bit for bit that of a full forward pass.
// The search times go to stderr ("mixed precision: ..."): wall time, CPU time of the
// threads doing the search, and the process CPU time (which includes rows evaluated
// concurrently on other threads).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <etk/quant/observers.hpp>
#include <etk/quant/uniform.hpp>
#include <etk/search/activation_compression.hpp>
#include <etk/search/mixed_precision.hpp>

#include "lazy.hpp"
#include "prefix_cache.hpp"
#include "study.hpp"

namespace {

namespace es = etk::search;

// The searches' calibration: this many held-out lines (Study::calibration_lines).
constexpr int kCalibCount = 8;
std::vector<int> calib_lines(ocr::Study& study) { return study.calibration_lines(ocr::Set::Short, kCalibCount); }
const std::vector<int> kWidths = {8, 6, 5, 4, 3, 2};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void quantize_weights(etk::MatrixView<float> w, int bits) {
  const auto x = etk::matrix_view(static_cast<const float*>(w.data()), w.rows(), w.cols(), w.outerStride());
  etk::MinMaxObserver obs(etk::CalibSpec{bits, true, false}, 0);
  obs.observe(x);
  etk::fake_quantize(x, obs.params(), w);
}

double process_cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Damage of the calibration lines' probabilities vs the float model's.
es::Damage damage_of(ocr::Study& study, const std::vector<ocr::Probs>& probs) {
  const auto& ref = study.float_probs(ocr::Set::Short);
  const std::vector<int> lines = calib_lines(study);
  es::Damage d;
  double n = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const ocr::Probs& p = ref[size_t(lines[i])];
    d.kl += ocr::Study::kl(p, probs[i]) / double(probs.size());
    for (size_t j = 0; j < p.p.size(); ++j) {
      const double e = double(p.p[j]) - double(probs[i].p[j]);
      d.mse += e * e;
    }
    n += double(p.p.size());
  }
  d.mse /= n;
  return d;
}

es::Damage damage_of(ocr::Study& study, const ocr::Run& run) {
  return damage_of(study, study.forward(run, ocr::Set::Short, calib_lines(study)));
}

// ---- weights ----------------------------------------------------------------------------
struct WeightSearch {
  std::vector<es::QuantTensor> tensors;
  std::map<std::string, size_t> index;
  es::SensitivityTable table;
  std::map<std::pair<int, bool>, es::MixedPrecisionResult> results;  // (avg bits, exact)
};

void apply_config(ocr::Run& run, std::shared_ptr<const std::map<std::string, size_t>> index,
                  const es::BitConfig& config) {
  run.hooks.weights = [index, config](const ocr::LayerInfo& l, etk::MatrixView<float> w, float*) {
    const auto it = index->find(l.name);
    if (it != index->end() && config[it->second] != es::kFloat) quantize_weights(w, config[it->second]);
  };
}

// Built once per Study through an ocr::Lazy (shared by the rows, published when complete).
std::shared_ptr<WeightSearch> weight_search(ocr::Study& study) {
  auto s = std::make_shared<WeightSearch>();
  const auto t0 = std::chrono::steady_clock::now();
  const double process0 = process_cpu_seconds(), thread0 = ocr::thread_cpu_seconds();
  const auto main_thread = std::this_thread::get_id();
  // CPU seconds of evaluations run on the search's other threads (in nanoseconds).
  auto other_cpu = std::make_shared<std::atomic<long long>>(0);
  const ocr::Model& model = study.model();
  // Tensor i is Model::layers[i].
  for (const ocr::Layer& l : model.layers) {
    s->index[l.info.name] = s->tensors.size();
    s->tensors.push_back(es::QuantTensor{l.info.name, std::int64_t(l.w.size()), 0, 8, 4 * std::int64_t(l.w.rows())});
  }
  auto index = std::make_shared<const std::map<std::string, size_t>>(s->index);
  std::vector<const float*> images;
  for (int line : calib_lines(study)) images.push_back(study.image(ocr::Set::Short, line));
  auto prefix = std::make_shared<ocr::PrefixCache>(model, images, study.data(ocr::Set::Short).width);
  const double t_prefix = seconds_since(t0);
  // Local: the cache and the checkpoints it holds (~200 MB) go when the search is done.
  es::SensitivityCache cache(
      [&study, index, prefix, other_cpu, main_thread](const es::BitConfig& config) {
        const double c0 = ocr::thread_cpu_seconds();
        ocr::Run run;
        apply_config(run, index, config);
        std::vector<int> layers;
        for (size_t i = 0; i < config.size(); ++i)
          if (config[i] != es::kFloat) layers.push_back(int(i));
        const es::Damage d = damage_of(study, prefix->forward(layers, run.hooks.weights));
        if (std::this_thread::get_id() != main_thread)
          *other_cpu += static_cast<long long>(1e9 * (ocr::thread_cpu_seconds() - c0));
        return d;
      },
      s->tensors.size());
  s->table = es::measure_sensitivity(cache, kWidths, 2);
  const double t_sens = seconds_since(t0);
  for (int avg : {4, 5, 6})
    for (bool exact : {false, true}) {
      const es::Budget b{es::BudgetKind::average_bits, double(avg)};
      s->results[{avg, exact}] = exact ? es::exact_mixed_precision(s->tensors, s->table, b)
                                       : es::greedy_mixed_precision(s->tensors, s->table, b);
    }
  const double t_search = seconds_since(t0);
  // The final checks, also on 2 threads; verify() then answers from the cache.
  std::vector<es::BitConfig> chosen;
  for (const auto& r : s->results) chosen.push_back(r.second.choice.bits);
  cache.prefetch(chosen, 2);
  for (int avg : {4, 5, 6})
    for (bool exact : {false, true}) {
      const auto& r = s->results.at({avg, exact});
      const es::Damage measured = es::verify(cache, r);
      std::fprintf(stderr,
                   "mixed precision: %s avg %d: %.3f bits, predicted KL %.4g, measured KL %.4g%s\n",
                   exact ? "exact " : "greedy", avg, r.choice.average_bits, r.choice.predicted,
                   measured.kl, r.exact ? "" : " (rounded cells)");
    }
  const double wall = seconds_since(t0);
  const double cpu = ocr::thread_cpu_seconds() - thread0 + 1e-9 * double(other_cpu->load());
  std::fprintf(stderr,
               "mixed precision: weight search %.1f s wall, %.1f s CPU on its threads (process CPU %.1f s, "
               "with any rows running meanwhile): float prefix cache %.1f s (%.0f MB of checkpoints), "
               "sensitivity %.1f s, greedy + DP %.2f s, final checks %.1f s; %zu forward evaluations of "
               "%zu lines, %zu cache hits\n",
               wall, cpu, process_cpu_seconds() - process0, t_prefix, double(prefix->checkpoint_bytes()) / 1e6,
               t_sens - t_prefix, t_search - t_sens, wall - t_search, cache.evaluations(), size_t(kCalibCount),
               cache.hits());
  return s;
}

// ---- activations ------------------------------------------------------------------------
struct ActivationSearch {
  // Per site (LayerNorm output 0..4): calibration rows and the consuming linear [120, out].
  std::vector<etk::RowMatrixXf> calib, next;
  // Per projection kind (0 PCA, 1 compression-aware), per site: candidate codecs + damage.
  std::vector<std::vector<std::vector<es::ActivationCodec>>> codecs;
  std::vector<std::vector<std::vector<es::CompressionCandidate>>> candidates;
};

const char* consumer_role(int site) { return site == 4 ? "head" : (site % 2 == 0 ? "qkv" : "fc1"); }

// Built once per Study through an ocr::Lazy, like weight_search.
std::shared_ptr<ActivationSearch> activation_search(ocr::Study& study) {
  auto s = std::make_shared<ActivationSearch>();
  const auto t0 = std::chrono::steady_clock::now();
  s->calib.resize(5);
  s->next.resize(5);
  study.model().with_weights([&](const ocr::LayerInfo& l, etk::MatrixView<float> w, float*) {
    for (int site = 0; site < 5; ++site)
      if (l.role == consumer_role(site) && (site == 4 || l.block == site / 2)) s->next[size_t(site)] = w.transpose();
  });
  {
    ocr::Run probe;
    auto rows = std::make_shared<std::vector<std::vector<float>>>(5);
    probe.hooks.transformer_only = true;
    probe.hooks.activation = [rows](const ocr::ActivationSite& site, float* d) {
      if (site.point != ocr::Point::LayerNormOutput) return;
      auto& v = (*rows)[size_t(site.index)];
      v.insert(v.end(), d, d + size_t(site.rows) * size_t(site.cols));
    };
    study.forward(probe, ocr::Set::Short, study.calibration_lines(ocr::Set::Short, 16));
    for (int site = 0; site < 5; ++site) {
      const auto& v = (*rows)[size_t(site)];
      s->calib[size_t(site)] = etk::matrix_view(v.data(), std::ptrdiff_t(v.size() / 120), 120, 120);
    }
  }
  size_t evaluations = 0;
  s->codecs.resize(2);
  s->candidates.resize(2);
  for (int kind = 0; kind < 2; ++kind) {
    s->codecs[size_t(kind)].resize(5);
    s->candidates[size_t(kind)].resize(5);
    for (int site = 0; site < 5; ++site) {
      const auto& x = s->calib[size_t(site)];
      const auto& w = s->next[size_t(site)];
      for (std::ptrdiff_t k : {120, 96, 72, 48, 24})
        for (int bits : {8, 6, 4, 3, 2}) {
          es::CodecOptions o;
          o.projection = k == 120 ? es::ProjectionKind::none
                                  : (kind == 0 ? es::ProjectionKind::pca : es::ProjectionKind::compression_aware);
          o.reduced_dim = k == 120 ? 0 : k;
          o.group_size = 12;
          o.average_bits = bits;
          auto codec = std::make_shared<es::ActivationCodec>(es::calibrate_codec(
              etk::matrix_view(x.data(), x.rows(), x.cols(), x.cols()), o,
              etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols())));
          ocr::Run run;
          run.hooks.transformer_only = true;
          run.hooks.activation = [codec, site](const ocr::ActivationSite& a, float* d) {
            if (a.point != ocr::Point::LayerNormOutput || a.index != site) return;
            auto v = etk::matrix_view(d, a.rows, a.cols, a.cols);
            const auto bytes = codec->encode(etk::matrix_view(static_cast<const float*>(d), a.rows, a.cols, a.cols));
            codec->decode(bytes.data(), bytes.size(), v);
          };
          const es::Damage d = damage_of(study, run);
          ++evaluations;
          s->codecs[size_t(kind)][size_t(site)].push_back(*codec);
          s->candidates[size_t(kind)][size_t(site)].push_back({double(codec->row_bytes()), d.kl});
        }
    }
  }
  std::fprintf(stderr, "mixed precision: activation search %.1f s, %zu forward evaluations of %zu lines\n",
               seconds_since(t0), evaluations, size_t(kCalibCount));
  return s;
}

}  // namespace

ETK_OCR_TECHNIQUE(mixed_precision, 50) {
  auto weights = std::make_shared<ocr::Lazy<WeightSearch>>();
  auto activations = std::make_shared<ocr::Lazy<ActivationSearch>>();
  for (int avg : {4, 5, 6}) {
    study.add("weights uniform", std::to_string(avg) + " bits", ocr::Set::Short, [avg](ocr::Run& run) {
      run.hooks.weights = [avg](const ocr::LayerInfo&, etk::MatrixView<float> w, float*) {
        quantize_weights(w, avg);
      };
      run.effect = [avg] { return ocr::Effect{"bits per value", double(avg)}; };
    });
    for (bool exact : {false, true})
      study.add(exact ? "weights mixed (exact DP)" : "weights mixed (greedy MP)", "avg " + std::to_string(avg),
                ocr::Set::Short, [&study, weights, avg, exact](ocr::Run& run) {
                  auto s = weights->get([&study] { return weight_search(study); });
                  const auto& r = s->results.at({avg, exact});
                  apply_config(run, std::make_shared<const std::map<std::string, size_t>>(s->index), r.choice.bits);
                  const double bits = r.choice.average_bits;
                  run.effect = [bits] { return ocr::Effect{"bits per value", bits}; };
                });
  }
  for (int kind = 0; kind < 2; ++kind)
    for (int ratio : {2, 3, 4})
      study.add(kind == 0 ? "activations (PCA)" : "activations (compression-aware)",
                std::to_string(ratio) + "x fewer bytes than int8", ocr::Set::Short,
                [&study, activations, kind, ratio](ocr::Run& run) {
                  auto s = activations->get([&study] { return activation_search(study); });
                  const auto& cand = s->candidates[size_t(kind)];
                  // Budget per token row over the five sites: 5 * 120 / ratio bytes.
                  const auto a = es::allocate_compression_ratios(cand, 5.0 * 120.0 / ratio);
                  std::vector<es::ActivationCodec> chosen;
                  for (int site = 0; site < 5; ++site)
                    chosen.push_back(s->codecs[size_t(kind)][size_t(site)][size_t(a.choice[size_t(site)])]);
                  auto codecs = std::make_shared<std::vector<es::ActivationCodec>>(std::move(chosen));
                  auto moved = std::make_shared<std::pair<double, double>>(0.0, 0.0);  // bytes, values
                  run.hooks.transformer_only = true;
                  run.hooks.activation = [codecs, moved](const ocr::ActivationSite& site, float* d) {
                    if (site.point != ocr::Point::LayerNormOutput) return;
                    const auto& c = (*codecs)[size_t(site.index)];
                    auto v = etk::matrix_view(d, site.rows, site.cols, site.cols);
                    const auto bytes = c.encode(etk::matrix_view(static_cast<const float*>(d), site.rows, site.cols, site.cols));
                    c.decode(bytes.data(), bytes.size(), v);
                    moved->first += double(bytes.size());
                    moved->second += double(v.size());
                  };
                  run.effect = [moved] {
                    return ocr::Effect{"bits per value", 8.0 * moved->first / std::max(1.0, moved->second)};
                  };
                });
  using Q = ocr::Quantity;
  const ocr::Set s = ocr::Set::Short;
  study.paper_claim("MPTQ-ViT",
                    "+0.90 to +23.35% over the state of the art for 4-bit ViTs; +3.82 to +78.14% with mixed "
                    "precision at 5 bits (ImageNet)",
                    {{"weights uniform", "4 bits", s, {Q::CharAcc}},
                     {"weights mixed (greedy MP)", "avg 4", s, {Q::CharAcc}},
                     {"weights mixed (exact DP)", "avg 4", s, {Q::CharAcc}},
                     {"weights uniform", "5 bits", s, {Q::CharAcc}},
                     {"weights mixed (greedy MP)", "avg 5", s, {Q::Effect, Q::CharAcc}},
                     {"weights mixed (exact DP)", "avg 5", s, {Q::Effect, Q::CharAcc}}});
  study.paper_claim("activation compression", "2.91-5.97x less memory access at negligible accuracy drop (CNNs)",
                    {{"activations (compression-aware)", "4x fewer bytes than int8", s, {Q::Effect, Q::CharChange}},
                     {"activations (compression-aware)", "3x fewer bytes than int8", s, {Q::Effect, Q::CharChange}},
                     {"activations (PCA)", "4x fewer bytes than int8", s, {Q::Effect, Q::CharChange}}});
}
