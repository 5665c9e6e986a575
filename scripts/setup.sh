#!/usr/bin/env bash
# Installs every system (Debian) and Python dependency Tessera needs to build,
# test and run its main job. Idempotent: safe to run again; skips what is there.
#
#   bash scripts/setup.sh            # apt packages + .venv
#   TESSERA_SKIP_APT=1 bash scripts/setup.sh   # only the Python environment
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev
  libprotobuf-dev protobuf-compiler libonnx-dev
  libtomlplusplus-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  python3 python3-venv python3-numpy python3-torch python3-torchvision python3-sklearn
  clang-14 libclang-rt-14-dev
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ "${TESSERA_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "[setup] Debian packages: all present"
  fi
fi

# Python: a venv over Debian's python3 so Debian's torch 1.13 stays visible.
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c "import onnx, numpy; assert numpy.__version__.startswith('1.')" 2>/dev/null; then
  echo "[setup] installing Python packages into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
fi
echo "[setup] done"
