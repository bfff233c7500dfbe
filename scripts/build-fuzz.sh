#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with Debian's clang into build/fuzz
# (a separate CMake tree: the main build uses GCC). Only the fuzz sources and
# the src/ files they exercise are compiled. `make test` runs this before
# ctest, whose `fuzz.request` test (label `fuzz`) runs the binary.
#   scripts/build-fuzz.sh [BUILD_DIR]      default build/fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build/fuzz}
cxx=${FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "build-fuzz: clang++ not found (scripts/install-deps.sh installs clang)" >&2
  exit 1
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S fuzz -B "$build_dir" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build_dir"
