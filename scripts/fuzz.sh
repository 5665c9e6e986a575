#!/usr/bin/env bash
# Builds the libFuzzer target `fuzz_import` (clang, ASan + UBSan) in build-fuzz/
# and fuzzes ONNX import -> shape inference -> O1 passes -> partition -> lower
# for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS]        # default 60
#
# The corpus (build-fuzz/corpus/) is rebuilt from what is on disk each run —
# the ONNX node-test models, models/**/model.onnx under 1 MB and the committed
# seeds in tests/fuzz/seeds/ — and keeps what the fuzzer added in earlier runs.
# Exits non-zero when the fuzzer finds a crash, leak, UB or timeout; the input
# is left in build-fuzz/artifacts/ (crash-*, leak-*, timeout-*, oom-*). Replay:
#   build-fuzz/tests/fuzz/fuzz_import build-fuzz/artifacts/crash-...
# Env: FUZZ_BUILD (dir, default build-fuzz), FUZZ_MAX_LEN (bytes, default
# 131072), FUZZ_JOBS (parallel fuzzers, default 1), JOBS (build parallelism, 2),
# FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
MAX_LEN="${FUZZ_MAX_LEN:-131072}"
JOBS="${JOBS:-2}"
FUZZ_JOBS="${FUZZ_JOBS:-1}"

CC_BIN="$(command -v clang-14 || command -v clang || true)"
CXX_BIN="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$CC_BIN" ] || [ -z "$CXX_BIN" ]; then
  echo "[fuzz] clang not found: run scripts/setup.sh (installs clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "[fuzz] configuring $BUILD with $CXX_BIN"
  CC="$CC_BIN" CXX="$CXX_BIN" cmake -S "$ROOT" -B "$BUILD" -G Ninja -DTESSERA_BUILD_FUZZ=ON \
    -DTESSERA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "[fuzz] building fuzz_import"
cmake --build "$BUILD" --target fuzz_import -j "$JOBS"
FUZZER="$BUILD/tests/fuzz/fuzz_import"

# ---- corpus: copy seeds in under content-hash names (idempotent) ----
CORPUS="$BUILD/corpus"
ARTIFACTS="$BUILD/artifacts"
mkdir -p "$CORPUS" "$ARTIFACTS"
add_seed() {
  local f="$1" h
  h="$(sha1sum "$f" | cut -c1-40)"
  [ -e "$CORPUS/$h" ] || cp "$f" "$CORPUS/$h"
}
n=0
NODE_DIR="$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/onnx/backend/test/data/node 2>/dev/null | head -1 || true)"
if [ -n "$NODE_DIR" ]; then
  for f in "$NODE_DIR"/*/model.onnx; do add_seed "$f"; n=$((n + 1)); done
else
  echo "[fuzz] note: no ONNX node-test models under .venv (run scripts/setup.sh); using the other seeds"
fi
if [ -d "$ROOT/models" ]; then
  while IFS= read -r -d '' f; do add_seed "$f"; n=$((n + 1)); done \
    < <(find "$ROOT/models" -name model.onnx -size -1024k -print0)
fi
for d in seeds regressions; do
  for f in "$ROOT/tests/fuzz/$d"/*; do
    case "$f" in *.md|*"*") continue ;; esac
    add_seed "$f"; n=$((n + 1))
  done
done
echo "[fuzz] $n seed files; corpus $CORPUS has $(ls "$CORPUS" | wc -l) inputs"

# ---- fuzz ----
echo "[fuzz] running $FUZZER for ${SECONDS_TO_RUN}s"
ARGS=(-max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048
      -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/")
if [ "$FUZZ_JOBS" -gt 1 ]; then ARGS+=(-fork="$FUZZ_JOBS"); fi
# shellcheck disable=SC2086
set +e
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
  "$FUZZER" "${ARGS[@]}" ${FUZZ_ARGS:-} "$CORPUS"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "[fuzz] FAILED (exit $rc): inputs left in $ARTIFACTS:" >&2
  ls -la "$ARTIFACTS" >&2
  exit $rc
fi
echo "[fuzz] ok: no crash in ${SECONDS_TO_RUN}s"
