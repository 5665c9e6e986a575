#!/usr/bin/env bash
# CTest entry for the ONNX node-test conformance run.
# usage: run_conformance.sh RUNNER OUT_DIR
# Finds the node test data in the project's .venv (pip onnx), runs every case,
# writes OUT_DIR/onnx_conformance.md and .json, and enforces
# tests/conformance/expected_failures.txt in both directions.
set -euo pipefail
runner=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=$root/.venv/bin/python
[ -x "$py" ] || py=python3
data=$("$py" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/node"))' 2>/dev/null || true)
if [ -z "$data" ] || [ ! -d "$data" ]; then
  echo "SKIP: the onnx Python package (with its backend test data) is not installed; run scripts/setup.sh"
  exit 77
fi
mkdir -p "$out"
exec "$runner" --data "$data" --expected "$here/expected_failures.txt" \
  --report "$out/onnx_conformance.md" --json "$out/onnx_conformance.json"
