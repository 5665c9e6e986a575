#!/usr/bin/env bash
# Training-step benchmark: Tessera against JAX (jax.jit, XLA CPU) and PyPI
# PyTorch (MKL; eager and torch.compile), one run, same threads, network,
# weights, optimizer and digits batches (issue 9's benchmark line).
#
#   bash scripts/bench_train.sh                     # build/bin/tessera, 2 threads, batch 256, 50 steps
#   BUILD_DIR=build-foo bash scripts/bench_train.sh
#   THREADS=2 BATCH=256 WARMUP=10 STEPS=50 MODELS=mlp,cnn bash scripts/bench_train.sh
#   bash scripts/bench_train.sh --peers jax,torch   # extra arguments go to bench/train/bench_train.py
#   bash scripts/bench_train.sh --validate          # peers reproduce torch_ref.json's loss curves?
#
# Installs the peers into .venv-peers (scripts/setup_peers.sh), generates
# models/train_{mlp,cnn} when missing (scripts/gen_train_refs.py, .venv),
# builds tessera_cli and tessera_backend_cpu in BUILD_DIR when the binary is
# missing, then writes bench/results/train_step.json and train_step.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
CLI="${TESSERA_CLI:-$BUILD_DIR/bin/tessera}"
THREADS="${THREADS:-2}"
BATCH="${BATCH:-256}"
WARMUP="${WARMUP:-10}"
STEPS="${STEPS:-50}"
MODELS="${MODELS:-mlp,cnn}"

bash "$ROOT/scripts/setup_peers.sh"

for m in ${MODELS//,/ }; do
  if [ ! -f "$ROOT/models/train_$m/model.onnx" ]; then
    if [ ! -x "$ROOT/.venv/bin/python" ]; then
      echo "bench_train: error: models/train_$m missing and $ROOT/.venv not found; run scripts/setup.sh" >&2
      exit 2
    fi
    echo "[bench_train] generating models/train_*"
    "$ROOT/.venv/bin/python" "$ROOT/scripts/gen_train_refs.py" --out "$ROOT/models"
    break
  fi
done

if [ ! -x "$CLI" ] || ! "$CLI" train --help >/dev/null 2>&1; then
  if [ -n "${TESSERA_CLI:-}" ]; then
    echo "bench_train: error: $CLI is missing or has no 'train' command" >&2
    exit 2
  fi
  echo "[bench_train] building tessera_cli and tessera_backend_cpu in $BUILD_DIR"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    (cd "$ROOT" && cmake --preset ci -B "$BUILD_DIR")
  fi
  cmake --build "$BUILD_DIR" --target tessera_cli tessera_backend_cpu -j "$(nproc)"
fi

exec "$ROOT/.venv-peers/bin/python" "$ROOT/bench/train/bench_train.py" --cli "$CLI" --models "$MODELS" \
  --threads "$THREADS" --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" "$@"
