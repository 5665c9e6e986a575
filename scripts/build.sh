#!/usr/bin/env bash
# Configures and builds Tessera into build/ (CMake preset "ci": Release,
# warnings as errors). Assumes scripts/setup.sh has run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -f build/build.ninja ]; then
  cmake --preset ci
fi
cmake --build build -j "$(nproc)"
