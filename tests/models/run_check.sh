#!/usr/bin/env bash
# usage: run_check.sh TESSERA_CLI MODEL_DIR [extra run flags...]
# Runs MODEL_DIR/model.onnx on MODEL_DIR/test_data_set_0 and checks the outputs
# against the reference outputs there. Exit 77 (skip) when the model is missing.
set -uo pipefail
cli="$1"; dir="$2"; shift 2
data="$dir/test_data_set_0"
if [ ! -f "$dir/model.onnx" ] || [ ! -f "$data/input_0.pb" ] || [ ! -f "$data/output_0.pb" ]; then
  echo "SKIP: $dir/model.onnx or its test data is missing (run: .venv/bin/python scripts/gen_models.py --out models)"
  exit 77
fi
set -x
exec "$cli" run "$dir/model.onnx" --inputs "$data" --check "$data" "$@"
