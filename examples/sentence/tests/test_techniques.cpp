// The encoder's technique options (encoder.hpp): each degenerate setting is the float
// runner, the selection rules keep what they promise, W8A8 stays close to float, results
// do not depend on the thread count, bad settings are rejected; the hook points
// (EncoderHooks) see what they promise and an identity hook leaves the float runner; the
// report's rows have unique names and a family each.
#include <cmath>

#include <atomic>
#include <set>
#include <sstream>

#include "curve_chart.hpp"
#include "sentence_test_util.hpp"
#include "study.hpp"

using namespace sentence_test;

namespace {

std::vector<sentence::TokenIds> sample_ids(std::size_t count) {
  std::vector<sentence::TokenIds> ids;
  for (std::size_t s = 0; s < fixture().ids.size() && ids.size() < count; s += sanitizer_stride())
    ids.push_back(fixture().ids[s]);
  ids.push_back({});    // an empty sentence
  ids.push_back({42});  // one token
  return ids;
}

std::vector<float> run(const sentence::EncoderOptions& o, const std::vector<sentence::TokenIds>& ids,
                       std::vector<std::ptrdiff_t>* kept = nullptr, const etk::Context& ctx = {}) {
  const sentence::Encoder enc(model(), o);
  std::vector<float> out(ids.size() * 512);
  enc.embed(ids, out.data(), ctx, kept);
  return out;
}

std::ptrdiff_t clipped(const sentence::TokenIds& t) { return std::min<std::ptrdiff_t>(std::ptrdiff_t(t.size()), 128); }

const sentence::PrunePoint kPoints[] = {sentence::PrunePoint::layer0_attention, sentence::PrunePoint::layer0_output,
                                        sentence::PrunePoint::layer1_attention};

}  // namespace

TEST_CASE("techniques: keeping every token is the float runner") {
  const auto ids = sample_ids(12);
  const auto ref = embed(ids);
  // The only difference left is the pooling's summation (a weighted row sum against a
  // column sum) over <= 128 rows: relative rounding <= 128 * 2^-24 per coordinate, so the
  // embeddings' cosine stays above 1 - 1e-9 (squared error terms); 1e-7 leaves margin.
  for (auto rule : {sentence::PruneRule::top_k, sentence::PruneRule::coverage, sentence::PruneRule::ltp,
                    sentence::PruneRule::merge})
    for (auto point : kPoints)
      for (auto pooling : {sentence::PrunedPooling::carried, sentence::PrunedPooling::updated}) {
        sentence::EncoderOptions o;
        o.prune = rule;
        o.prune_value = rule == sentence::PruneRule::ltp || rule == sentence::PruneRule::merge ? 0.0 : 1.0;
        o.point = point;
        o.pooling = pooling;
        std::vector<std::ptrdiff_t> kept;
        const auto got = run(o, ids, &kept);
        for (std::size_t s = 0; s < ids.size(); ++s) {
          CHECK(kept[s] == clipped(ids[s]));
          CHECK(cosine(got.data() + s * 512, ref.data() + s * 512, 512) > 1 - 1e-7);
        }
      }
}

TEST_CASE("techniques: the selection rules keep what they promise") {
  const auto ids = sample_ids(12);
  const auto ref = embed(ids);
  for (auto point : kPoints) {
    sentence::EncoderOptions o;
    o.point = point;
    o.prune = sentence::PruneRule::top_k;
    o.prune_value = 0.5;
    std::vector<std::ptrdiff_t> kept;
    const auto carried = run(o, ids, &kept);
    for (std::size_t s = 0; s < ids.size(); ++s) CHECK(kept[s] == (clipped(ids[s]) + 1) / 2);
    o.pooling = sentence::PrunedPooling::updated;
    const auto updated = run(o, ids);
    o.pooling = sentence::PrunedPooling::dropped;
    const auto dropped = run(o, ids);
    o.prune = sentence::PruneRule::merge;  // round(0.5 n) merged away, clamped to the (n + 1) / 2 even-index tokens
    run(o, ids, &kept);
    for (std::size_t s = 0; s < ids.size(); ++s) {
      const std::ptrdiff_t n = clipped(ids[s]);
      CHECK(kept[s] == (n < 2 ? n : n - std::min<std::ptrdiff_t>(std::lround(0.5 * double(n)), (n + 1) / 2)));
    }
    // A sentence that lost tokens changes; the two poolings differ on it; every output is a unit vector.
    const std::size_t s = 0;
    REQUIRE(clipped(ids[s]) > 4);
    CHECK(cosine(carried.data(), ref.data(), 512) < 1 - 1e-6);
    CHECK(cosine(carried.data(), dropped.data(), 512) < 1 - 1e-6);
    CHECK(cosine(updated.data(), carried.data(), 512) < 1 - 1e-6);
    CHECK(cosine(updated.data(), dropped.data(), 512) < 1 - 1e-6);
    for (const auto* e : {&dropped, &updated})
      for (std::size_t r = 0; r < ids.size(); ++r) {
        double sq = 0;
        for (int c = 0; c < 512; ++c) sq += double((*e)[r * 512 + c]) * (*e)[r * 512 + c];
        CHECK(sq == Approx(1.0).epsilon(1e-5));
      }
  }
  sentence::EncoderOptions o;
  o.prune = sentence::PruneRule::ltp;
  o.prune_value = 10.0;  // above every score: keep_best leaves one token per non-empty sentence
  std::vector<std::ptrdiff_t> kept;
  run(o, ids, &kept);
  for (std::size_t s = 0; s < ids.size(); ++s) CHECK(kept[s] == std::min<std::ptrdiff_t>(clipped(ids[s]), 1));
}

TEST_CASE("techniques: W8A8 stays close to float; threads change nothing") {
  const auto ids = sample_ids(24);
  const auto ref = embed(ids);
  sentence::EncoderOptions o;
  o.linears = sentence::LinearKind::w8a8;
  const auto w8 = run(o, ids);
  // Per-row s8 activations and per-channel s8 weights: each product carries a relative
  // error up to ~2 * 2^-8 (half a step of each grid), and errors of ten linears add up;
  // the report measures cos ~0.9994 on 1,000 sentences. The bound 0.99 fails for a wrong
  // scale or a transposed weight (cos ~0) but not for rounding.
  for (std::size_t s = 0; s < ids.size(); ++s) CHECK(cosine(w8.data() + s * 512, ref.data() + s * 512, 512) > 0.99);
  // etk::gemm_f32 linears: fp32 sums of <= 1536 products in another order, relative
  // error ~1e-6 per output; cosine 1 - 1e-6 fails for any wrong weight layout.
  sentence::EncoderOptions g;
  g.linears = sentence::LinearKind::gemm_f32;
  const auto f32 = run(g, ids);
  for (std::size_t s = 0; s < ids.size(); ++s) CHECK(cosine(f32.data() + s * 512, ref.data() + s * 512, 512) > 1 - 1e-6);
  o.prune = sentence::PruneRule::top_k;
  o.prune_value = 0.5;
  o.chunk_tokens = 64;
  const auto one = run(o, ids);
  etk::SimpleThreadPool pool(2);
  const auto two = run(o, ids, nullptr, etk::Context{&pool, nullptr});
  CHECK(one == two);
  // One encoder, reused workspaces: a second call (after a call on other sentences) and a
  // call on two threads give the first call's bits.
  const sentence::Encoder enc(model(), o);
  std::vector<float> first(ids.size() * 512), again(ids.size() * 512), other(512);
  enc.embed(ids, first.data());
  enc.embed({ids[1]}, other.data(), etk::Context{&pool, nullptr});
  enc.embed(ids, again.data(), etk::Context{&pool, nullptr});
  CHECK(first == one);
  CHECK(again == one);
}

TEST_CASE("techniques: bad settings are rejected") {
  auto bad = [](sentence::PruneRule r, double v) {
    sentence::EncoderOptions o;
    o.prune = r;
    o.prune_value = v;
    CHECK_THROWS_AS(sentence::Encoder(model(), o), etk::invalid_argument);
  };
  bad(sentence::PruneRule::top_k, 0.0);
  bad(sentence::PruneRule::top_k, 1.5);
  bad(sentence::PruneRule::coverage, -0.1);
  bad(sentence::PruneRule::ltp, -1.0);
  bad(sentence::PruneRule::ltp, NAN);
  bad(sentence::PruneRule::merge, 0.6);
  sentence::EncoderOptions o;
  o.chunk_tokens = 0;
  CHECK_THROWS_AS(sentence::Encoder(model(), o), etk::invalid_argument);
}

TEST_CASE("techniques: hooks see every site, identity hooks give the float runner") {
  const auto ids = sample_ids(10);
  const auto ref = embed(ids);
  std::ptrdiff_t tokens = 0;
  for (const auto& t : ids) tokens += clipped(t);
  sentence::EncoderOptions o;
  // rsqrt through the hook computed as the runner does: bit-identical embeddings.
  std::atomic<std::ptrdiff_t> rsqrt_calls{0}, tanh_values{0};
  std::ptrdiff_t ln_rows[4] = {0, 0, 0, 0}, ln_cols[4] = {0, 0, 0, 0};
  o.hooks.layer_norm_rsqrt = [&](float* x, std::ptrdiff_t n) {
    for (std::ptrdiff_t i = 0; i < n; ++i) x[i] = 1.0f / std::sqrt(x[i]);
    rsqrt_calls += n;
  };
  o.hooks.tanh = [&](float* x, std::ptrdiff_t n) {
    for (std::ptrdiff_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
    tanh_values += n;
  };
  o.hooks.layer_norm_output = [&](int site, float*, std::ptrdiff_t n, std::ptrdiff_t cols) {
    REQUIRE((site >= 0 && site < 4));
    ln_rows[site] += n;
    ln_cols[site] = cols;
  };
  const auto hooked = run(o, ids);
  CHECK(rsqrt_calls == 4 * tokens);  // four layer norms per token
  CHECK(tanh_values == std::ptrdiff_t(ids.size()) * 512);
  for (int site = 0; site < 4; ++site) CHECK(ln_rows[site] == tokens);
  CHECK(ln_cols[0] == 256);
  CHECK(ln_cols[1] == 512);
  // Eigen's vectorised tanh and std::tanh differ by a few ulp: cosine stays within 1e-9.
  for (std::size_t s = 0; s < ids.size(); ++s) CHECK(cosine(hooked.data() + s * 512, ref.data() + s * 512, 512) > 1 - 1e-9);
  // The attention hook through attention_with (plain softmax, no edits): the same
  // probabilities up to summation order, relative error ~1e-6 per output.
  sentence::EncoderOptions a;
  std::atomic<int> calls{0};
  a.hooks.attention = [&](const sentence::AttentionCall& c) {
    ++calls;
    sentence::attention_with(c, {}, {});
  };
  const auto att = run(a, ids);
  std::size_t non_empty = 0;
  for (const auto& t : ids) non_empty += t.empty() ? 0 : 1;
  CHECK(calls == int(2 * non_empty));
  for (std::size_t s = 0; s < ids.size(); ++s) CHECK(cosine(att.data() + s * 512, ref.data() + s * 512, 512) > 1 - 1e-9);
  // An attention hook cannot serve a rule that scores tokens by the probabilities.
  a.prune = sentence::PruneRule::top_k;
  a.prune_value = 0.5;
  CHECK_THROWS_AS(sentence::Encoder(model(), a), etk::invalid_argument);
  a.prune = sentence::PruneRule::merge;
  CHECK_NOTHROW(sentence::Encoder(model(), a));
}

TEST_CASE("techniques: the report's rows are unique, each in a family") {
  std::set<std::string> names;
  for (const auto& t : sentence::sentence_techniques()) {
    CHECK(!t.family.empty());
    CHECK(names.insert(t.name).second);
  }
  for (const char* f : {"float", "latte-keep25", "latte-trained2", "weights-pwlq4", "softmax-2sf8", "lut-exp8", "lut-all16",
                        "compress4x", "accelerated"})
    CHECK(names.count(f) == 1);
  CHECK_THROWS_AS(sentence::sentence_technique("no-such-row"), std::invalid_argument);
}

TEST_CASE("techniques: the chart draws one curve per series and every point") {
  examples::Chart c;
  c.title = "t <&>";
  c.y_min = 0, c.y_max = 1;
  c.baselines.push_back({"#000", 1.0});
  c.panels.push_back({"a", "bits per value", {{"#111", {{8, 0.9, "x"}, {4, 0.5, "y"}, {6, 0.7, "z"}}}}});
  c.panels.push_back({"b", "LUT segments", {{"#222", {{16, 0.99, "one"}}}}});
  std::ostringstream os;
  examples::write_curve_chart(os, c);
  const std::string svg = os.str();
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("<polyline") == 1);  // a single point draws no line
  CHECK(count("<circle") == 4);
  CHECK(count("stroke-dasharray") == 2);
  CHECK(svg.find("t &lt;&amp;&gt;") != std::string::npos);

  // The text form reads back to the same chart (a tab in a label becomes a space), and
  // two charts drawn into one SVG hold both charts' titles, panels and points.
  c.panels[0].series[0].points[0].label = "a\tb";
  c.panels[1].series[0].points[0].x = 0.1;  // not exact in binary: %.17g must round-trip it
  std::stringstream data;
  examples::write_chart_data(data, c);
  const examples::Chart back = examples::read_chart_data(data);
  CHECK(back.title == c.title);
  CHECK(back.y_min == c.y_min);
  CHECK(back.y_max == c.y_max);
  REQUIRE(back.baselines.size() == 1);
  CHECK(back.baselines[0].y == 1.0);
  REQUIRE(back.panels.size() == 2);
  CHECK(back.panels[0].x_label == "bits per value");
  REQUIRE(back.panels[0].series.size() == 1);
  REQUIRE(back.panels[0].series[0].points.size() == 3);
  CHECK(back.panels[0].series[0].points[0].label == "a b");
  CHECK(back.panels[0].series[0].points[2].y == 0.7);
  CHECK(back.panels[1].series[0].points[0].x == 0.1);
  examples::Chart other = c;
  other.title = "second model";
  std::ostringstream both;
  examples::write_curve_charts(both, {back, other});
  const std::string two = both.str();
  std::size_t circles = 0;
  for (std::size_t at = two.find("<circle"); at != std::string::npos; at = two.find("<circle", at + 1)) ++circles;
  CHECK(circles == 8);
  CHECK(two.find("second model") != std::string::npos);
  CHECK(two.find("<svg") == two.rfind("<svg"));  // one SVG document
  for (const char* bad : {"", "panel\ta\tb\n", "chart\tt\t0\t1\npoint\t1\t2\tx\n", "chart\tt\t0\tnan\n",
                          "chart\tt\t1\t0\n", "chart\tt\t0\t1\npanel\ta\n", "chart\tt\t0\t1\nbaseline\t#000\t1x\n"}) {
    std::istringstream in(bad);
    CHECK_THROWS_AS(examples::read_chart_data(in), std::runtime_error);
  }
}
