#!/usr/bin/env bash
# Runs a libFuzzer binary for a bounded time on a copy of a seed corpus (the
# checked-in corpus is never modified). What ctest's `fuzz.request` runs.
#   fuzz/run-fuzzer.sh FUZZER_BINARY SEED_CORPUS_DIR [SECONDS] [DICT]
# Exit status: 0 no crash; 1 a crash, leak, timeout or OOM (the reproducer is
# copied to build/fuzz/artifacts/ and printed); 2 usage or missing binary.
# Reproduce a crash: FUZZER_BINARY build/fuzz/artifacts/crash-...
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 FUZZER_BINARY SEED_CORPUS_DIR [SECONDS] [DICT]" >&2
  exit 2
fi
fuzzer=$1
seeds=$2
seconds=${3:-20}
dict=${4:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$fuzzer" ]; then
  echo "run-fuzzer: $fuzzer not found: the fuzzers are built by scripts/build-fuzz.sh" \
       "(make test runs it before ctest; needs clang, see scripts/install-deps.sh)" >&2
  exit 2
fi
if [ ! -d "$seeds" ]; then
  echo "run-fuzzer: seed corpus $seeds not found" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ff-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
args=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1
      -artifact_prefix="$work/artifacts/" -close_fd_mask=0)
if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
echo "run-fuzzer: $fuzzer ${args[*]} (corpus: copy of $seeds, $(ls "$seeds" | wc -l) seeds)"
"$fuzzer" "${args[@]}" "$work/corpus" 2>"$work/log"
status=$?
# The interesting lines: start-up, coverage progress (thinned), the end.
grep -E "^INFO: (Seed|Loaded|-max_len)|#[0-9]+.*(INITED|DONE)|^stat::|ERROR|SUMMARY|check failed|Test unit written|^artifact_prefix|==[0-9]+==" "$work/log" | head -60
last=$(grep -E "^#[0-9]+" "$work/log" | tail -1)
echo "run-fuzzer: last status line: ${last:-none}"
echo "run-fuzzer: corpus grew from $(ls "$seeds" | wc -l) to $(ls "$work/corpus" | wc -l) inputs"
if [ $status -ne 0 ]; then
  keep="$repo/build/fuzz/artifacts"
  mkdir -p "$keep"
  for f in "$work"/artifacts/*; do
    [ -e "$f" ] || continue
    cp "$f" "$keep/"
    echo "run-fuzzer: reproducer $keep/$(basename "$f") ($(stat -c %s "$f") bytes):"
    od -c "$f" | head -20
    echo "run-fuzzer: reproduce with: $fuzzer $keep/$(basename "$f")"
  done
  echo "run-fuzzer: FAILED (fuzzer exit $status); full log tail:" >&2
  tail -60 "$work/log" >&2
  exit 1
fi
echo "run-fuzzer: no crash in ${seconds}s"
