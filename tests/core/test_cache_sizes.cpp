// Tests of etk/core/cache_sizes.hpp: the sizes read on this CPU are in the clamped range,
// the fallbacks and clamps apply to missing or absurd reports, and CPUID agrees with the
// OS where both answer.
#include <catch2/catch.hpp>
#include <etk/core/cache_sizes.hpp>

#include <cstdio>

namespace cs = etk::detail::cache_sizes;

TEST_CASE("cache sizes: this CPU's are within the clamps") {
  const cs::CacheSizes& s = cs::get();
  std::printf("L1d %td KiB, L2 %td KiB\n", s.l1d / 1024, s.l2 / 1024);
  CHECK(s.l1d >= 16 * 1024);
  CHECK(s.l1d <= 1024 * 1024);
  CHECK(s.l2 >= 128 * 1024);
  CHECK(s.l2 <= 16 * 1024 * 1024);
}

TEST_CASE("cache sizes: missing reports fall back, absurd ones are clamped") {
  CHECK(cs::sanitise({0, 0}).l1d == cs::kFallbackL1d);
  CHECK(cs::sanitise({-1, -1}).l2 == cs::kFallbackL2);
  CHECK(cs::sanitise({1, 1}).l1d == 16 * 1024);
  CHECK(cs::sanitise({1, 1}).l2 == 128 * 1024);
  CHECK(cs::sanitise({std::ptrdiff_t(1) << 40, std::ptrdiff_t(1) << 40}).l1d == 1024 * 1024);
  CHECK(cs::sanitise({std::ptrdiff_t(1) << 40, std::ptrdiff_t(1) << 40}).l2 == 16 * 1024 * 1024);
  CHECK(cs::sanitise({48 * 1024, 2048 * 1024}).l1d == 48 * 1024);
  CHECK(cs::sanitise({48 * 1024, 2048 * 1024}).l2 == 2048 * 1024);
}

TEST_CASE("cache sizes: CPUID's deterministic cache parameters agree with the OS") {
  const std::ptrdiff_t l1 = cs::cpuid_cache_bytes(1), l2 = cs::cpuid_cache_bytes(2);
  const cs::CacheSizes os = cs::read_reported();
  if (l1 == 0 || l2 == 0) {
    std::printf("SKIPPED: this CPU (or build) describes no caches through CPUID\n");
    return;
  }
  CHECK(l1 == os.l1d);
  CHECK(l2 == os.l2);
}
