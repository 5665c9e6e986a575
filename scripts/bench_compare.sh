#!/usr/bin/env bash
# Tessera vs ONNX Runtime vs OpenVINO on the CPU (bench/compare/compare.py): installs the peers
# (scripts/setup_peers.sh), generates the models that are missing, then runs the comparison and
# writes bench/results/compare.{json,md,png}. Arguments go to compare.py, e.g.
#
#   bash scripts/bench_compare.sh                     # full run (~10-15 min on a quiet 2-core machine)
#   bash scripts/bench_compare.sh --quick             # development run: few iterations
#   bash scripts/bench_compare.sh --models mlp_wide,resnet50 --iters 20
#
# TESSERA_BUILD_DIR picks the build (default: of build, build-lead and build-compare, the one
# with the newest bin/tessera and a CPU backend plugin). Run it on an otherwise idle machine: the numbers are
# only as good as the machine is quiet (compare.md records the load average before and after).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${TESSERA_BUILD_DIR:-}" ]; then
  newest=""
  for d in build build-lead build-compare; do
    if [ -x "$d/bin/tessera" ] && [ -e "$d/backends/libtessera_backend_cpu.so" ]; then
      if [ -z "$newest" ] || [ "$d/bin/tessera" -nt "$newest/bin/tessera" ]; then newest="$d"; fi
    fi
  done
  TESSERA_BUILD_DIR="${newest:-build}"
fi
CLI="${TESSERA_BUILD_DIR:-build}/bin/tessera"
if [ ! -x "$CLI" ]; then
  echo "bench_compare: no tessera CLI at $CLI; build first: cmake --preset ci && cmake --build build" >&2
  echo "  (or set TESSERA_BUILD_DIR to a build folder)" >&2
  exit 2
fi
echo "[bench_compare] using $CLI"

bash scripts/setup_peers.sh

TORCH_PY="$ROOT/.venv/bin/python"  # PyTorch 1.13: the exporter the models were made with
if [ ! -x "$TORCH_PY" ]; then
  echo "bench_compare: $TORCH_PY missing (scripts/setup.sh creates it); it exports the models" >&2
  exit 2
fi
"$TORCH_PY" scripts/gen_models.py --out models --only resnet50,bert_base,gpt2_small,mlp_wide
"$TORCH_PY" bench/compare/export_models.py --out models/bench

exec "$ROOT/.venv-peers/bin/python" bench/compare/compare.py --cli "$CLI" "$@"
