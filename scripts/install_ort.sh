#!/usr/bin/env bash
# Installs npm's onnxruntime-node 1.30.0 (CPU; the CUDA download skipped) into
# ORT_DIR (default ~/.cache/fbnet/onnxruntime-node) unless it is there, and
# prints ORT_DIR/node_modules (for NODE_PATH). Used by the ONNX tests and bench.
set -euo pipefail
ORT_VERSION=1.30.0
ORT_DIR=${ORT_DIR:-$HOME/.cache/fbnet/onnxruntime-node}
mod=$ORT_DIR/node_modules/onnxruntime-node
if [ ! -f "$mod/package.json" ] || ! grep -q "\"version\": \"$ORT_VERSION\"" "$mod/package.json"; then
  command -v npm > /dev/null || { echo "install_ort: npm is missing (scripts/install_deps.sh installs nodejs, npm)" >&2; exit 1; }
  mkdir -p "$ORT_DIR"
  echo "install_ort: npm install onnxruntime-node@$ORT_VERSION into $ORT_DIR" >&2
  (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error \
     "onnxruntime-node@$ORT_VERSION" >&2)
fi
echo "$ORT_DIR/node_modules"
