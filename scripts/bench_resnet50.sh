#!/usr/bin/env bash
# ResNet-50 on the CPU: Tessera against ONNX Runtime, measured in the same run.
#
#   bash scripts/bench_resnet50.sh            # uses build/bin/tessera
#   BUILD_DIR=build-foo bash scripts/bench_resnet50.sh
#   TESSERA_CLI=/path/to/tessera THREADS=2 WARMUP=10 ITERS=50 bash scripts/bench_resnet50.sh
#
# Installs onnxruntime into .venv on first use, generates models/resnet50 when
# missing, then runs ONNX Runtime (CPU EP, ORT_ENABLE_ALL, intra-op THREADS,
# inter-op 1) and `tessera bench --threads THREADS` back to back with the same
# warmup/iteration counts, prints a table and the tessera/ort latency ratio, and
# writes bench/results/resnet50_cpu.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
CLI="${TESSERA_CLI:-$BUILD_DIR/bin/tessera}"
THREADS="${THREADS:-2}"
WARMUP="${WARMUP:-10}"
ITERS="${ITERS:-50}"

if [ ! -x "$PY" ]; then
  echo "bench_resnet50: error: $PY not found; run scripts/setup.sh first" >&2
  exit 2
fi
if ! "$PY" -c "import onnxruntime" 2>/dev/null; then
  echo "[bench] installing onnxruntime into $ROOT/.venv"
  "$PY" -m pip install -q --disable-pip-version-check onnxruntime "numpy<2"
fi
if [ ! -f "$ROOT/models/resnet50/model.onnx" ]; then
  echo "[bench] generating models/resnet50"
  "$PY" "$ROOT/scripts/gen_models.py" --out "$ROOT/models" --only resnet50
fi
if [ ! -x "$CLI" ]; then
  echo "bench_resnet50: error: $CLI not found; build it first:" >&2
  echo "  cmake --preset default && cmake --build build --target tessera_cli tessera_backend_cpu" >&2
  exit 2
fi

exec "$PY" "$ROOT/bench/bench_resnet50.py" --cli "$CLI" --model "$ROOT/models/resnet50" \
  --threads "$THREADS" --warmup "$WARMUP" --iters "$ITERS" --out "$ROOT/bench/results/resnet50_cpu.json"
