#!/usr/bin/env bash
# usage: run_on_device.sh TESSERA_CLI DEVICE COMMAND [args...]
# Runs COMMAND when `tessera devices` lists DEVICE (e.g. opencl:0); otherwise
# prints why and exits 77 (the test is skipped, never passed silently).
set -uo pipefail
cli="$1"; dev="$2"; shift 2
listing="$("$cli" devices 2>&1)"
if ! grep -q "device ${dev}:" <<<"$listing"; then
  echo "SKIP: device ${dev} is not available:"
  grep -A1 "^${dev%%:*} " <<<"$listing" || echo "  (no ${dev%%:*} plugin found)"
  exit 77
fi
exec "$@"
