#!/usr/bin/env bash
# usage: plan_roundtrip.sh TESSERA_CLI MODEL_DIR WORK_DIR
# Compiles MODEL_DIR/model.onnx to a .tplan, runs the plan (checked against the
# reference outputs, saved to S1), runs the .onnx directly (saved to S2), and
# requires S1 and S2 to be bit-identical: loading a plan must reproduce exactly
# what compiling the model produces. Exit 77 (skip) when the model is missing.
set -uo pipefail
cli="$1"; dir="$2"; work="$3"
data="$dir/test_data_set_0"
if [ ! -f "$dir/model.onnx" ] || [ ! -f "$data/input_0.pb" ] || [ ! -f "$data/output_0.pb" ]; then
  echo "SKIP: $dir/model.onnx or its test data is missing (run: .venv/bin/python scripts/gen_models.py --out models)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" || exit 1
plan="$work/model.tplan"

step() {  # step NAME CMD...: runs CMD, fails the test with NAME on a non-zero exit
  local name="$1"; shift
  echo "+ $*"
  "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: $name exited with $rc"; exit 1; fi
}

step compile "$cli" compile "$dir/model.onnx" -o "$plan"
[ -s "$plan" ] || { echo "FAIL: compile wrote no plan at $plan"; exit 1; }
step "run plan" "$cli" run "$plan" --inputs "$data" --check "$data" --save "$work/S1"
step "run onnx" "$cli" run "$dir/model.onnx" --inputs "$data" --save "$work/S2"

n=0
for want in "$data"/output_*.pb; do
  f="$(basename "$want")"
  for s in S1 S2; do
    [ -f "$work/$s/$f" ] || { echo "FAIL: $work/$s/$f was not written"; exit 1; }
  done
  if ! cmp -s "$work/S1/$f" "$work/S2/$f"; then
    echo "FAIL: $f differs between the plan run (S1) and the model run (S2)"
    py="$(dirname "$0")/../../.venv/bin/python"
    if [ -x "$py" ]; then
      "$py" - "$work/S1/$f" "$work/S2/$f" <<'PYEOF'
import sys, numpy as np, onnx
from onnx import numpy_helper
a, b = (numpy_helper.to_array(onnx.load_tensor(p)) for p in sys.argv[1:3])
print(f"  S1 {a.dtype}{list(a.shape)}  S2 {b.dtype}{list(b.shape)}")
if a.shape == b.shape and a.dtype == b.dtype:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    print(f"  max abs diff {d.max():.3g}, {int((d > 0).sum())} of {d.size} elements differ")
PYEOF
    fi
    exit 1
  fi
  n=$((n + 1))
done
echo "OK: $n output(s) bit-identical between $plan and $dir/model.onnx"
rm -rf "$work"
