// techniques_compression.cpp: activation-compression rows (etk/search/activation_compression):
// the four layer-norm outputs (the inputs of layer 0's qkv and FFN, of layer 1's qkv and
// FFN) are encoded and decoded by a calibrated codec before the linear that consumes them.
// Per site, candidates: compression-aware projections to k = C, 3C/4, C/2 channels (C the
// site's width) at 8 / 6 / 4 / 3 bits in groups of 64, calibrated against the consuming
// linear's weights on the first kSentences calibration sentences' rows; each candidate's
// damage is its relative output error through that linear, ||(x - x') W||^2 / ||x W||^2,
// on the same rows. etk::search::allocate_compression_ratios picks one per site for a
// budget of (sum of C) / ratio bytes per token, i.e. `ratio` x fewer bytes than int8.
#include <Eigen/Core>
#include <atomic>

#include "etk/search/activation_compression.hpp"
#include "techniques.hpp"

namespace sentence {

namespace {

namespace es = etk::search;
constexpr std::size_t kSentences = 48;
constexpr std::ptrdiff_t kMaxRows = 2048;

const Linear& consumer(const UseModel& m, int site) {
  const TransformerLayer& L = m.layers[site / 2];
  return site % 2 == 0 ? L.qkv : L.ffn1;
}

struct Search {
  std::once_flag once;
  std::vector<std::vector<es::ActivationCodec>> codecs;         // per site
  std::vector<std::vector<es::CompressionCandidate>> candidates;  // per site
  double int8_bytes = 0;                                         // per token over the sites
  void run(const Calibration& cal) {
    std::call_once(once, [&] {
      const std::vector<TokenIds> first(cal.sentences.begin(),
                                        cal.sentences.begin() + std::ptrdiff_t(std::min(kSentences, cal.sentences.size())));
      const auto rows = record_layer_norm_outputs(Calibration{cal.model, first}, kMaxRows);
      codecs.resize(rows.size());
      candidates.resize(rows.size());
      for (std::size_t site = 0; site < rows.size(); ++site) {
        const Linear& l = consumer(cal.model, int(site));
        const std::ptrdiff_t C = l.in, n = std::ptrdiff_t(rows[site].size()) / C;
        int8_bytes += double(C);
        const auto x = etk::matrix_view(rows[site].data(), n, C, C);
        const auto w = etk::matrix_view(l.w.data(), C, l.out, l.out);
        const etk::RowMatrixXf y = x * w;
        for (std::ptrdiff_t k : {C, 3 * C / 4, C / 2})
          for (int bits : {8, 6, 4, 3}) {
            es::CodecOptions o;
            o.projection = k == C ? es::ProjectionKind::none : es::ProjectionKind::compression_aware;
            o.reduced_dim = k == C ? 0 : k;
            o.group_size = 64;
            o.average_bits = bits;
            es::ActivationCodec codec = es::calibrate_codec(x, o, w);
            etk::RowMatrixXf back(n, C);
            const auto bytes = codec.encode(x);
            codec.decode(bytes.data(), bytes.size(), etk::matrix_view(back.data(), n, C, C));
            const double damage = ((etk::RowMatrixXf(x) - back) * w).squaredNorm() / std::max(1e-30, double(y.squaredNorm()));
            candidates[site].push_back({double(codec.row_bytes()), damage});
            codecs[site].push_back(std::move(codec));
          }
      }
    });
  }
};

}  // namespace

void compression_rows(std::vector<Technique>& t) {
  auto search = std::make_shared<Search>();
  for (int ratio : {2, 3, 4}) {
    Technique r;
    r.family = "activation compression";
    r.name = "compress" + std::to_string(ratio) + "x";
    r.what = "layer-norm outputs compressed (compression-aware codecs), " + std::to_string(ratio) + "x fewer bytes than int8";
    r.claim = "activation compression: 2.91-5.97x less memory access at negligible accuracy drop (CNNs)";
    r.setup = [search, ratio](RowRun& run, const Calibration& cal) {
      search->run(cal);
      const auto a = es::allocate_compression_ratios(search->candidates, search->int8_bytes / ratio);
      auto chosen = std::make_shared<std::vector<es::ActivationCodec>>();
      for (std::size_t site = 0; site < search->codecs.size(); ++site)
        chosen->push_back(search->codecs[site][std::size_t(a.choice[site])]);
      struct Moved {
        std::atomic<std::int64_t> bytes{0}, values{0};
      };
      auto moved = std::make_shared<Moved>();
      run.options.hooks.layer_norm_output = [chosen, moved](int site, float* x, std::ptrdiff_t n, std::ptrdiff_t cols) {
        if (n == 0) return;
        const es::ActivationCodec& c = (*chosen)[std::size_t(site)];
        const auto bytes = c.encode(etk::matrix_view(static_cast<const float*>(x), n, cols, cols));
        c.decode(bytes.data(), bytes.size(), etk::matrix_view(x, n, cols, cols));
        moved->bytes += std::int64_t(bytes.size());
        moved->values += std::int64_t(n * cols);
      };
      run.effect = [moved] {
        return Effect{"bits per value", 8.0 * double(moved->bytes.load()) / std::max<double>(1.0, double(moved->values.load()))};
      };
    };
    t.push_back(r);
  }
}

}  // namespace sentence
