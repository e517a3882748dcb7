#!/usr/bin/env bash
# Installs what building cascade's tests, examples and benchmarks needs on Debian 12, if it is missing.
#   scripts/install-deps.sh        # tests, examples, benchmarks
#   scripts/install-deps.sh fuzz   # and clang with libFuzzer, for scripts/fuzz.sh
set -euo pipefail

packages=(g++ cmake make pkg-config libboost1.81-dev libboost-json1.81-dev libssl-dev openssl catch2
          libbenchmark-dev libsqlite3-dev libhiredis-dev redis-server curl prometheus wrk libxml2-utils
          libcmark-dev python3 chromium)
for extra in "$@"; do
  case "$extra" in
    fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    *) echo "install-deps.sh: unknown group '$extra' (known: fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
