#!/usr/bin/env bash
# usage: run_check_set.sh TESSERA_CLI MODEL_DIR K
# Runs MODEL_DIR/model.onnx on MODEL_DIR/test_data_set_K and checks the outputs
# against that folder's references (rtol 1e-3 / atol 1e-4). Exit 77 (skip) when
# the model or that data set is missing.
set -uo pipefail
cli="$1"; dir="$2"; k="$3"
data="$dir/test_data_set_$k"
if [ ! -f "$dir/model.onnx" ] || [ ! -f "$data/input_0.pb" ] || [ ! -f "$data/output_0.pb" ]; then
  echo "SKIP: $dir/model.onnx or $data is missing (run: .venv/bin/python scripts/gen_zoo.py --out models/zoo)"
  exit 77
fi
set -x
exec "$cli" run "$dir/model.onnx" --inputs "$data" --check "$data" --rtol 1e-3 --atol 1e-4
