// cache.hpp: where the examples find what scripts/lib/common.sh fetched: $ETK_CACHE, else
// $XDG_CACHE_HOME/etk, else $HOME/.cache/etk (the same rule as common.sh); the Reuters
// texts under it unless $ETK_REUTERS_DIR says otherwise.
#pragma once

#include <cstdlib>
#include <string>

namespace examples {

inline std::string etk_cache_dir() {
  const char* cache = std::getenv("ETK_CACHE");
  if (cache && *cache) return cache;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/etk";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/etk";
}

// $ETK_REUTERS_DIR, or the r-cran-tm texts in the cache.
inline std::string reuters_dir_from_env() {
  const char* e = std::getenv("ETK_REUTERS_DIR");
  if (e && *e) return e;
  return etk_cache_dir() + "/r-cran-tm/usr/lib/R/site-library/tm/texts";
}

}  // namespace examples
