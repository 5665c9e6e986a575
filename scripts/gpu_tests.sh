#!/usr/bin/env bash
# What to run on a machine with an NVIDIA GPU (written for an H100; unrun
# without one): builds the CUDA backend, runs its unit tests and the shared
# backend suite, then the end-to-end model tests on cuda:0.
#
# usage: scripts/gpu_tests.sh [BUILD_DIR]      (default build-gpu)
# env:   PYTHON   interpreter with numpy/onnx/torch for gen_models.py
#                 (default: .venv/bin/python, else /opt/torch/.venv/bin/python)
#        JOBS     parallel build jobs (default: nproc)
# Exit status: 0 when everything ran and passed, 1 on a failure, 77 when no
# GPU is visible (nothing is run).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build-gpu}"
JOBS="${JOBS:-$(nproc)}"
cd "$ROOT"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP: no NVIDIA GPU visible (nvidia-smi -L failed)"
  exit 77
fi
nvidia-smi -L
command -v nvcc >/dev/null 2>&1 || export PATH="/usr/local/cuda/bin:$PATH"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=/opt/torch/.venv/bin/python; fi
fi

failures=()
step() {  # step NAME CMD...: runs CMD, records a failure by name
  local name="$1"; shift
  echo; echo "=== $name: $*"
  "$@"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then failures+=("$name (exit $rc)"); fi
  return 0
}

# 1. Build with CUDA required (sm_80 and sm_90).
cmake --preset ci -B "$BUILD" -DTESSERA_BUILD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90" || exit 1
cmake --build "$BUILD" -j "$JOBS" --target tessera_backend_cuda tessera_backend_cpu tessera_backend_null \
  tessera_cli test_cuda test_cuda_ops_emulated test_backend_suite || exit 1

# 2. The device must be visible to the plugin.
step "devices" "$BUILD/bin/tessera" devices
"$BUILD/bin/tessera" devices --json | grep -q '"name": "cuda"' || failures+=("cuda plugin not listed")

# 3. CUDA unit tests (host logic + every GPU test against CPU references) and the
#    shared backend suite on every plugin. No test may be skipped here.
step "ctest cuda + backend suite" ctest --test-dir "$BUILD" -R '[Cc]uda|[Bb]ackend' --output-on-failure -j 4
skipped=$("$BUILD/tests/test_cuda" 2>&1 | grep -c '^\[  SKIPPED \]' || true)
if [ "$skipped" != "0" ]; then
  "$BUILD/tests/test_cuda" 2>&1 | grep -A1 'Skipped' | head -20
  failures+=("test_cuda skipped $skipped test(s) on a GPU machine")
fi

# 4. End-to-end models on cuda:0 (CPU fallback allowed), then strictly on cuda:0.
if [ ! -f models/mlp/model.onnx ]; then
  step "gen_models" "$PY" scripts/gen_models.py --out models
fi
for m in mlp cnn transformer resnet18 bert_tiny gpt_tiny; do
  [ -f "models/$m/model.onnx" ] || { echo "SKIP: models/$m missing"; continue; }
  step "model $m on cuda:0,cpu" bash tests/models/run_check.sh "$BUILD/bin/tessera" "models/$m" \
    --device cuda:0,cpu --rtol 1e-3 --atol 1e-4
  step "model $m strict cuda:0" bash tests/models/run_check.sh "$BUILD/bin/tessera" "models/$m" \
    --device cuda:0 --strict --rtol 1e-3 --atol 1e-4
  step "model $m cuda:0 bf16" bash tests/models/run_check.sh "$BUILD/bin/tessera" "models/$m" \
    --device cuda:0,cpu --precision bf16 --rtol 5e-2 --atol 5e-2
done

echo
if [ ${#failures[@]} -eq 0 ]; then
  echo "gpu_tests: all steps passed"
  exit 0
fi
echo "gpu_tests: ${#failures[@]} failure(s):"
printf '  %s\n' "${failures[@]}"
exit 1
