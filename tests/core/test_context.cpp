// etk:threads
// Tests of the caller-owned execution context: every task runs exactly once on any pool,
// concurrent tasks never share a worker index, the arena is aligned and only grows, and a
// lease uses the arena when there is one.
#include <catch2/catch.hpp>
#include <etk/core/context.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace {

// Runs n tasks on ctx and checks each ran once, with a worker index in range that no
// other task held at the same time.
void check_every_task_once(const etk::Context& ctx, std::ptrdiff_t n) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n));
  std::vector<std::atomic<int>> in_worker(static_cast<std::size_t>(ctx.concurrency()));
  std::atomic<bool> shared_worker{false}, out_of_range{false};
  etk::parallel_for(ctx, n, [&](std::ptrdiff_t t, int w) {
    if (w < 0 || w >= ctx.concurrency()) {
      out_of_range = true;
      return;
    }
    if (in_worker[static_cast<std::size_t>(w)].fetch_add(1) != 0) shared_worker = true;
    runs[static_cast<std::size_t>(t)].fetch_add(1);
    volatile std::uint64_t spin = 0;
    for (int i = 0; i < 2000; ++i) spin = spin + static_cast<std::uint64_t>(i);
    in_worker[static_cast<std::size_t>(w)].fetch_sub(1);
  });
  CHECK_FALSE(out_of_range);
  CHECK_FALSE(shared_worker);
  for (auto& r : runs) CHECK(r.load() == 1);
}

}  // namespace

TEST_CASE("parallel_for runs every task once without a pool, on the sequential pool and on a thread pool", "[threads]") {
  etk::Context none;
  check_every_task_once(none, 37);
  etk::SequentialPool seq;
  etk::Context sequential{&seq, nullptr};
  check_every_task_once(sequential, 1);
  check_every_task_once(sequential, 37);
  for (int threads : {1, 2, 3, 8}) {
    etk::SimpleThreadPool pool(threads);
    CHECK(pool.concurrency() == threads);
    etk::Context ctx{&pool, nullptr};
    for (std::ptrdiff_t n : {0, 1, 2, 7, 1000}) check_every_task_once(ctx, n);
  }
}

TEST_CASE("a thread pool serves many regions in a row", "[threads]") {
  etk::SimpleThreadPool pool(3);
  etk::Context ctx{&pool, nullptr};
  std::atomic<std::int64_t> sum{0};
  for (int region = 0; region < 200; ++region)
    etk::parallel_for(ctx, 5, [&](std::ptrdiff_t t, int) { sum += t + 1; });
  CHECK(sum.load() == 200 * 15);
}

TEST_CASE("SimpleThreadPool rejects a thread count out of range") {
  CHECK_THROWS_AS(etk::SimpleThreadPool(0), etk::invalid_argument);
  CHECK_THROWS_WITH(etk::SimpleThreadPool(-3), Catch::Contains("'threads'"));
}

TEST_CASE("ScratchArena is aligned, grows and never shrinks; a lease uses it") {
  etk::ScratchArena arena;
  CHECK(arena.capacity() == 0);
  arena.reserve(100);
  CHECK(arena.capacity() >= 100);
  CHECK(reinterpret_cast<std::uintptr_t>(arena.data()) % etk::ScratchArena::kAlignment == 0);
  void* before = arena.data();
  arena.reserve(10);
  CHECK(arena.data() == before);
  etk::Context ctx{nullptr, &arena};
  etk::ScratchLease small(ctx, 64);
  CHECK(small.data() == before);
  etk::ScratchLease big(ctx, 1 << 20);
  CHECK(arena.capacity() >= (1u << 20));
  CHECK(big.data() == arena.data());
  etk::Context no_arena;
  etk::ScratchLease own(no_arena, 256);
  CHECK(own.data() != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(own.data()) % etk::ScratchArena::kAlignment == 0);
  CHECK_THROWS_AS(arena.reserve(std::size_t(1) << 50), etk::invalid_argument);
}
