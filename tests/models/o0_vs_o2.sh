#!/usr/bin/env bash
# usage: o0_vs_o2.sh TESSERA_CLI MODEL_DIR WORK_DIR PYTHON
# Runs MODEL_DIR/model.onnx at --opt-level 0 (no rewrites) and 2 (all
# simplification and fusion passes) on the same inputs and checks that every
# output agrees within rtol 1e-4 / atol 1e-5. Exit 77 (skip) when the model is missing.
set -uo pipefail
cli="$1"; dir="$2"; work="$3"; py="$4"
data="$dir/test_data_set_0"
if [ ! -f "$dir/model.onnx" ] || [ ! -f "$data/input_0.pb" ]; then
  echo "SKIP: $dir/model.onnx or its test data is missing (run: .venv/bin/python scripts/gen_models.py --out models)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work/o0" "$work/o2" || exit 1
set -ex
"$cli" run "$dir/model.onnx" --inputs "$data" --opt-level 0 --save "$work/o0" > /dev/null
"$cli" run "$dir/model.onnx" --inputs "$data" --opt-level 2 --save "$work/o2" > /dev/null
"$py" - "$work/o0" "$work/o2" <<'PY'
import glob, os, sys
import numpy as np
from onnx import numpy_helper, TensorProto
a_dir, b_dir = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(a_dir, "output_*.pb")))
assert files, "no outputs saved"
for f in files:
    def load(p):
        t = TensorProto()
        t.ParseFromString(open(p, "rb").read())
        return numpy_helper.to_array(t)
    a, b = load(f), load(os.path.join(b_dir, os.path.basename(f)))
    assert a.shape == b.shape and a.dtype == b.dtype, (f, a.shape, b.shape, a.dtype, b.dtype)
    err = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0.0
    print(f"{os.path.basename(f)}: max abs difference O0 vs O2 = {err:.3g}")
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
print("O0 and O2 agree")
PY
