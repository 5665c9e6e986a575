#!/usr/bin/env bash
# CPU microbenchmarks (bench/micro/, Google Benchmark): GEMM, Conv, Softmax,
# LayerNorm and FusedAttention through the CPU backend's kernels, against this
# machine's measured fp32/bf16 peaks and memory copy bandwidth.
#
#   bash scripts/bench_micro.sh                       # 2 threads, 5 repetitions
#   THREADS=4 REPS=10 bash scripts/bench_micro.sh
#   QUICK=1 bash scripts/bench_micro.sh               # short check: 2 reps, 0.05 s each
#   bash scripts/bench_micro.sh --benchmark_filter='GEMM|Peak'   # extra flags go to the binary
#
# Configures and builds tessera_microbench in build-bench/ (Release,
# TESSERA_BUILD_BENCH=ON; BUILD_DIR overrides), runs it with
# --benchmark_repetitions=REPS --benchmark_report_aggregates_only=true
# --benchmark_format=json into bench/results/micro.json (the measured peaks are
# printed on stderr and stored in the JSON context), then writes the table
# bench/results/micro.md (median, CV, GFLOP/s or GB/s, fraction of peak).
# Needs libbenchmark-dev (scripts/setup.sh) and .venv's python for the table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3)"
BUILD_DIR="${BUILD_DIR:-build-bench}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
THREADS="${THREADS:-${TESSERA_THREADS:-2}}"
REPS="${REPS:-5}"
JOBS="${JOBS:-2}"
OUT_DIR="$ROOT/bench/results"
EXTRA=()
if [ "${QUICK:-0}" = 1 ]; then
  REPS=2
  EXTRA+=(--benchmark_min_time=0.05)
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "[bench_micro] configuring $BUILD_DIR" >&2
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_BUILD_BENCH=ON \
    -DTESSERA_BUILD_TESTS=OFF -DTESSERA_WERROR=ON >&2
else
  cmake -S "$ROOT" -B "$BUILD_DIR" -DTESSERA_BUILD_BENCH=ON >/dev/null
fi
echo "[bench_micro] building tessera_microbench" >&2
cmake --build "$BUILD_DIR" --target tessera_microbench -j "$JOBS" >&2
BIN="$BUILD_DIR/bench/tessera_microbench"

mkdir -p "$OUT_DIR"
TMP="$OUT_DIR/micro.json.tmp"
echo "[bench_micro] running on $THREADS thread(s), $REPS repetitions" >&2
"$BIN" --threads="$THREADS" --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
  --benchmark_format=json "${EXTRA[@]}" "$@" >"$TMP"
mv "$TMP" "$OUT_DIR/micro.json"
"$PY" "$ROOT/bench/micro/format_micro.py" "$OUT_DIR/micro.json" "$OUT_DIR/micro.md"
cat "$OUT_DIR/micro.md"
echo "[bench_micro] wrote $OUT_DIR/micro.json and $OUT_DIR/micro.md" >&2
