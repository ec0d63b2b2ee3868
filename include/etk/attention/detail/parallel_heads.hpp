// etk/attention/detail/parallel_heads.hpp: run a per-head job on a few std::threads.
//
// Heads are dealt round-robin to min(threads, heads) workers (the caller's thread is
// worker 0). Each worker owns one workspace of `workspace_floats` floats, allocated once
// per call. The per-head job computes a head from its inputs alone, so the result does
// not depend on the number of workers or on which worker ran a head (bit-identical).
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

// job(h, workspace) for every head h in [0, heads).
template <typename Job>
void for_each_head(std::ptrdiff_t heads, int threads, std::ptrdiff_t workspace_floats,
                   const Job& job) {
  const std::ptrdiff_t workers = std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(threads, heads));
  auto run = [&](std::ptrdiff_t w) {
    std::vector<float> workspace(static_cast<std::size_t>(workspace_floats));
    for (std::ptrdiff_t h = w; h < heads; h += workers) job(h, workspace.data());
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers - 1));
  for (std::ptrdiff_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
}

}  // namespace detail
ETK_END_NAMESPACE
