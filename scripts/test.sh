#!/usr/bin/env bash
# Sets up (apt + .venv), builds, generates the test models and runs the whole
# test suite with CTest. This is what CI runs (.ci/run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
.venv/bin/python scripts/gen_models.py --out models
.venv/bin/python scripts/gen_train_refs.py --out models
.venv/bin/python scripts/gen_zoo.py --out models/zoo
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900
