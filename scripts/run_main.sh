#!/usr/bin/env bash
# The main job: set up, build, generate a real model (torchvision ResNet-18)
# and run it on the best available device, printing outputs, latency and
# where each node ran; the outputs are checked against PyTorch's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
.venv/bin/python scripts/gen_models.py --out models --only resnet18
D=models/resnet18/test_data_set_0
build/bin/tessera devices
build/bin/tessera run models/resnet18/model.onnx --device auto --inputs "$D" --check "$D"
