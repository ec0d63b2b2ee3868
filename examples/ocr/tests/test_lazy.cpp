// Shared lazy state of the report's rows (src/lazy.hpp): a build that throws publishes
// nothing, and rows set up on two jobs after a failed set-up never see a half-built
// object; the report's run of mixed_precision with too small a calibration pool ends in
// the clean error on two jobs.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "lazy.hpp"
#include "ocr_test_util.hpp"
#include "study.hpp"

using namespace ocr;

namespace {
struct Filled {
  std::vector<int> parts;  // complete when it holds 5
};
}  // namespace

TEST_CASE("Lazy: a failed build publishes nothing, the next get builds again", "[ocr][lazy]") {
  Lazy<Filled, int> lazy;
  int builds = 0;
  auto build = [&] {
    ++builds;
    auto f = std::make_shared<Filled>();
    f->parts = {1, 2};
    if (builds == 1) throw std::runtime_error("first build fails half-way");
    f->parts = {1, 2, 3, 4, 5};
    return f;
  };
  CHECK_THROWS_WITH(lazy.get(7, build), "first build fails half-way");
  const auto a = lazy.get(7, build);
  CHECK(a->parts.size() == 5);
  CHECK(lazy.get(7, build) == a);  // built once it succeeded
  CHECK(builds == 2);
  CHECK(lazy.get(8, build) != a);  // keys are separate
}

TEST_CASE("rows set up on two jobs after a failed set-up see only complete shared state", "[ocr][lazy]") {
  StudyOptions o;
  o.data.lines = 2;
  o.long_lines = 0;
  o.calib_lines = 1;
  o.progress = false;
  o.jobs = 2;
  o.only = {"none"};
  Study study(ocr_test::model(), ocr_test::dict(), o);
  study.declare_all();
  auto shared = std::make_shared<Lazy<Filled>>();
  auto builds = std::make_shared<std::atomic<int>>(0);
  auto incomplete = std::make_shared<std::atomic<int>>(0);
  auto setup = [shared, builds, incomplete](Run&) {
    const auto f = shared->get([&] {
      auto v = std::make_shared<Filled>();
      v->parts = {1, 2};
      // The first build waits until the other job has taken its row, then fails.
      if (++*builds == 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        throw std::runtime_error("set-up failed");
      }
      v->parts = {1, 2, 3, 4, 5};
      return v;
    });
    if (f->parts.size() != 5) ++*incomplete;
  };
  for (int r = 0; r < 4; ++r) study.add("shared state", "row " + std::to_string(r), Set::Short, setup);
  CHECK_THROWS_WITH(study.evaluate_all(), "set-up failed");
  CHECK(*incomplete == 0);
  CHECK(*builds >= 1);
}

TEST_CASE("mixed_precision with too small a calibration pool on two jobs: a clean error", "[ocr][lazy]") {
  // 4 calibration lines where the weight search takes 8: its set-up throws, and the rows
  // after it rebuild (and throw) instead of reading the half-built search.
  StudyOptions o;
  o.data.lines = 2;
  o.long_lines = 0;
  o.calib_lines = 4;
  o.progress = false;
  o.jobs = 2;
  o.only = {"mixed_precision"};
  Study study(ocr_test::model(), ocr_test::dict(), o);
  study.declare_all();
  CHECK_THROWS_WITH(study.evaluate_all(), Catch::Contains("calibration pool of 4"));
}
