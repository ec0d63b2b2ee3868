// Tests of token_importance.hpp: hand-computed scores, the fast column-sum path against
// the reference over awkward shapes, query masks and both normalisations, the streaming
// accumulator, the adjoint, the class-token score and every bad input; the pass on a
// caller's pool and arena, bit-identical for every thread count.
// etk:isa-variants etk:threads
#include <catch2/catch.hpp>
#include <etk/pruning/reference/token_importance.hpp>
#include <etk/pruning/token_importance.hpp>
#include <support/pruning_util.hpp>

#include <cstdint>
#include <cstring>
#include <etk/core/context.hpp>
#include <limits>

using etk::HeadsView;
using etk::ImportanceNormalization;
using etk::ImportanceOptions;

TEST_CASE("importance of a hand-computable attention matrix") {
  // 2 heads, 2 queries, 3 keys.
  const std::vector<float> a = {0.5f, 0.25f, 0.25f,  1.0f, 0.0f, 0.0f,    // head 0
                                0.0f, 0.5f,  0.5f,   0.25f, 0.25f, 0.5f};  // head 1
  HeadsView<const float> p(a.data(), 2, 2, 3);
  // column sums 1.75, 1.0, 1.25 over H*Q = 4
  const Eigen::VectorXf s = etk::token_importance(p);
  CHECK(s[0] == 0.4375f);
  CHECK(s[1] == 0.25f);
  CHECK(s[2] == 0.3125f);
  // Query 1 masked: sums 0.5, 0.75, 0.75 over H*1 (valid) or H*2 (padded, LTP reference).
  const unsigned char valid[2] = {1, 0};
  ImportanceOptions o;
  o.query_valid = valid;
  const Eigen::VectorXf v = etk::token_importance(p, o);
  CHECK(v[0] == 0.25f);
  CHECK(v[1] == 0.375f);
  CHECK(v[2] == 0.375f);
  o.normalization = ImportanceNormalization::padded_length;
  const Eigen::VectorXf w = etk::token_importance(p, o);
  CHECK(w[0] == 0.125f);
  CHECK(w[1] == 0.1875f);
  CHECK(w[2] == 0.1875f);
  // Class-token score of query 0: mean over heads of rows (0.5, .25, .25) and (0, .5, .5).
  const Eigen::VectorXf c = etk::class_token_score(p, 0);
  CHECK(c[0] == 0.25f);
  CHECK(c[1] == 0.375f);
  CHECK(c[2] == 0.375f);
}

TEST_CASE("fast importance matches the reference over awkward shapes") {
  std::mt19937 rng(7);
  const std::ptrdiff_t sizes[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65};
  for (std::ptrdiff_t heads : {1, 3, 12})
    for (std::ptrdiff_t nq : sizes)
      for (std::ptrdiff_t nk : {std::ptrdiff_t(1), std::ptrdiff_t(13), nq, nq + 1}) {
        const auto pr = pruning_test::random_probs(heads, nq, nk, rng, 3.0f, nk % 3);
        std::vector<unsigned char> valid(static_cast<std::size_t>(nq));
        for (auto& v : valid) v = static_cast<unsigned char>(rng() % 4 != 0);
        valid[0] = 1;
        for (int masked = 0; masked < 2; ++masked)
          for (auto norm : {ImportanceNormalization::valid_queries, ImportanceNormalization::padded_length}) {
            ImportanceOptions o;
            o.normalization = norm;
            o.query_valid = masked ? valid.data() : nullptr;
            const Eigen::VectorXf fast = etk::token_importance(pr.view(), o);
            const Eigen::VectorXf ref = etk::reference::token_importance(pr.view(), o);
            // Tolerance: each fast score is a float sum of m <= heads*nq non-negative
            // terms (any order), then one multiplication by 1/den (two roundings: the
            // reciprocal and the product). Recursive summation of non-negative terms has
            // |error| <= (m-1) u * sum (u = 2^-24, first order), so
            // |fast - exact| <= (m + 1) u * exact; the reference (double) adds < 1 ulp
            // of float (its final rounding): u * exact. Total (m + 2) u * |ref|, with a
            // 1% margin for second-order terms.
            const double m = double(heads * nq);
            for (Eigen::Index j = 0; j < nk; ++j) {
              const double tol = 1.01 * (m + 2) * std::ldexp(1.0, -24) * std::abs(double(ref[j]));
              INFO("heads " << heads << " nq " << nq << " nk " << nk << " j " << j);
              CHECK(std::abs(double(fast[j]) - double(ref[j])) <= tol);
            }
          }
      }
}

TEST_CASE("the streaming accumulator adds head blocks into the same scores") {
  std::mt19937 rng(3);
  const auto pr = pruning_test::random_probs(4, 37, 29, rng);
  etk::ImportanceAccumulator<float> acc(29);
  for (std::ptrdiff_t h = 0; h < 4; ++h) {
    // Uneven split of the queries into blocks.
    acc.add(pr.view().row(h, 0), 10, pr.stride);
    acc.add(pr.view().row(h, 10), 27, pr.stride);
  }
  Eigen::VectorXf s(29);
  acc.finish(4.0f * 37.0f, s.data());
  const Eigen::VectorXf ref = etk::reference::token_importance(pr.view());
  for (Eigen::Index j = 0; j < 29; ++j)
    CHECK(std::abs(s[j] - ref[j]) <= 1.01 * (4 * 37 + 2) * std::ldexp(1.0, -24) * ref[j]);
  CHECK_THROWS_WITH(acc.add(etk::RowMatrixXf::Zero(2, 5)), Catch::Contains("'block'"));
}

TEST_CASE("importance backward is the adjoint of the forward map") {
  // s = W a is linear, so <g, W a> must equal <W^T g, a> for any g and a.
  std::mt19937 rng(11);
  const auto pr = pruning_test::random_probs(3, 9, 7, rng);
  const unsigned char valid[9] = {1, 1, 0, 1, 0, 1, 1, 1, 0};
  for (auto norm : {ImportanceNormalization::valid_queries, ImportanceNormalization::padded_length}) {
    ImportanceOptions o;
    o.normalization = norm;
    o.query_valid = valid;
    Eigen::VectorXd a(3 * 9 * 7);
    for (Eigen::Index k = 0; k < a.size(); ++k) a[k] = pr.data[static_cast<std::size_t>(k)];
    const Eigen::VectorXd s = etk::reference::token_importance(HeadsView<const double>(a.data(), 3, 9, 7), o);
    Eigen::VectorXd g = Eigen::VectorXd::LinSpaced(7, -1.0, 2.0);
    Eigen::VectorXd ga(a.size());
    etk::token_importance_backward(g, HeadsView<double>(ga.data(), 3, 9, 7), o);
    // Both sides are sums of < 200 double products of magnitude <= 2: 1e-13 covers them.
    CHECK(std::abs(g.dot(s) - ga.dot(a)) <= 1e-13);
    CHECK(ga[2 * 7 + 4] == 0.0);  // head 0, masked query 2
  }
}

TEST_CASE("importance rejects bad input, naming the argument") {
  std::mt19937 rng(5);
  auto pr = pruning_test::random_probs(2, 4, 6, rng);
  ImportanceOptions o;
  o.row_sum_tolerance = 1e-5;
  CHECK_NOTHROW(etk::token_importance(pr.view(), o));
  pr.at(1, 2, 3) += 0.01f;  // row no longer normalised
  CHECK_THROWS_WITH(etk::token_importance(pr.view(), o), Catch::Contains("head 1, query 2"));
  CHECK_NOTHROW(etk::token_importance(pr.view()));  // the check is optional
  pr.at(0, 3, 1) = -pr.at(0, 3, 1);
  CHECK_THROWS_WITH(etk::token_importance(pr.view(), o), Catch::Contains("negative"));
  pr = pruning_test::random_probs(2, 4, 6, rng);
  pr.at(1, 3, 4) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::token_importance(pr.view()), Catch::Contains("'probs'") && Catch::Contains("column 4"));
  CHECK_THROWS_AS(etk::class_token_score(pr.view(), 3), etk::invalid_argument);
  CHECK_NOTHROW(etk::class_token_score(pr.view(), 0));
  CHECK_THROWS_WITH(etk::class_token_score(pr.view(), 4), Catch::Contains("'query'"));
  pr = pruning_test::random_probs(2, 4, 6, rng);
  const unsigned char none[4] = {0, 0, 0, 0};
  ImportanceOptions m;
  m.query_valid = none;
  CHECK_THROWS_WITH(etk::token_importance(pr.view(), m), Catch::Contains("'query_valid'"));
  ImportanceOptions neg;
  neg.row_sum_tolerance = -1;
  CHECK_THROWS_WITH(etk::token_importance(pr.view(), neg), Catch::Contains("'row_sum_tolerance'"));
  CHECK_THROWS_WITH(etk::token_importance(HeadsView<const float>(pr.data.data(), 2, 0, 6)),
                    Catch::Contains("empty sequence"));
}

// The importance pass on an etk::Context: the heads x queries rows are cut into tasks by
// the shape alone, so with no pool, a sequential pool, 2 or 3 threads, with or without an
// arena, the scores are the same bits; an arena reserved to token_importance_scratch_bytes
// is used as it is (never reallocated). Shapes from one task (scratch 0) to the 64-task
// cap, masked and not, strided rows.
TEST_CASE("importance on the caller's pool and arena: the same bits for any thread count", "[threads]") {
  std::mt19937 rng(11);
  etk::SequentialPool sequential;
  etk::SimpleThreadPool two(2), three(3);
  struct Shape {
    std::ptrdiff_t heads, nq, nk;
  };
  for (const Shape sh : {Shape{1, 5, 7}, Shape{3, 200, 17}, Shape{12, 65, 66}, Shape{4, 1000, 33}, Shape{2, 9000, 5},
                         Shape{16, 1100, 3}}) {
    const auto pr = pruning_test::random_probs(sh.heads, sh.nq, sh.nk, rng, 3.0f, sh.nk % 3);
    std::vector<unsigned char> valid(static_cast<std::size_t>(sh.nq));
    for (auto& v : valid) v = static_cast<unsigned char>(rng() % 5 != 0);
    valid[0] = 1;
    const std::size_t bytes = etk::token_importance_scratch_bytes<float>(sh.heads, sh.nq, sh.nk);
    const std::ptrdiff_t rows = sh.heads * sh.nq;
    const std::ptrdiff_t tasks = std::min<std::ptrdiff_t>(64, std::max<std::ptrdiff_t>(1, rows / 256));
    CHECK(bytes <= std::size_t(tasks - 1) * sizeof(float) * std::size_t(sh.nk));
    CHECK((bytes == 0) == (rows < 512));
    for (int masked = 0; masked < 2; ++masked) {
      ImportanceOptions o;
      o.query_valid = masked ? valid.data() : nullptr;
      const Eigen::VectorXf base = etk::token_importance(pr.view(), o);
      const Eigen::VectorXf ref = etk::reference::token_importance(pr.view(), o);
      for (Eigen::Index j = 0; j < sh.nk; ++j)  // the bound of the test against the reference
        CHECK(std::abs(double(base[j]) - double(ref[j])) <=
              1.01 * (double(rows) + 2) * std::ldexp(1.0, -24) * std::abs(double(ref[j])));
      for (etk::ThreadPool* pool : {static_cast<etk::ThreadPool*>(&sequential), static_cast<etk::ThreadPool*>(&two),
                                    static_cast<etk::ThreadPool*>(&three)})
        for (int with_arena = 0; with_arena < 2; ++with_arena) {
          etk::ScratchArena arena(bytes);
          const void* memory = arena.data();
          const std::size_t capacity = arena.capacity();
          const etk::Context ctx{pool, with_arena ? &arena : nullptr};
          INFO("heads " << sh.heads << " nq " << sh.nq << " nk " << sh.nk << " masked " << masked << " threads "
                        << ctx.concurrency() << " arena " << with_arena);
          const Eigen::VectorXf s = etk::token_importance(pr.view(), o, ctx);
          REQUIRE(s.size() == base.size());
          CHECK(std::memcmp(s.data(), base.data(), sizeof(float) * std::size_t(sh.nk)) == 0);
          CHECK(arena.data() == memory);
          CHECK(arena.capacity() == capacity);
        }
    }
  }
  CHECK_THROWS_AS(etk::token_importance_scratch_bytes<float>(PTRDIFF_MAX, 2, 3), etk::invalid_argument);
  CHECK_THROWS_AS(etk::token_importance_scratch_bytes<float>(4, 1024, PTRDIFF_MAX), etk::invalid_argument);
}
