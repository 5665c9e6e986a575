#!/usr/bin/env bash
# Installs the benchmark peers into their own virtual environment, .venv-peers
# (kept apart from .venv: JAX and PyPI's PyTorch want numpy 2, the test
# environment keeps numpy < 2 for Debian's PyTorch 1.13). Used only by the
# benchmark scripts (bench/compare, bench/train); the tests never need it.
# Idempotent.
#
#   bash scripts/setup_peers.sh      # then .venv-peers/bin/python bench/...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-peers"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[peers] creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import onnxruntime, openvino, jax, torch, matplotlib, onnx" 2>/dev/null; then
  echo "[peers] installing onnxruntime, openvino, jax, torch (PyPI, MKL-backed), matplotlib"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements-peers.txt"
fi
"$VENV/bin/python" - <<'PY'
import jax, onnxruntime, openvino, torch
print(f"[peers] onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}, "
      f"jax {jax.__version__}, torch {torch.__version__} (MKL: {torch.backends.mkl.is_available()})")
PY
