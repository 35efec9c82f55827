#!/usr/bin/env bash
# Installs the Debian packages fbnet needs (build, data, reference tooling).
# Safe to run repeatedly: it only calls apt-get when something is missing.
set -euo pipefail
PKGS=(
  build-essential      # gcc, make
  libdnnl-dev          # oneDNN: fast conv kernels
  libcjson-dev         # arch files, COCO JSON, fixtures
  zlib1g-dev           # Fashion-MNIST .gz
  libpng-dev           # PNG (patched for hostile input by the distribution)
  libjpeg62-turbo-dev  # JPEG
  dataset-fashion-mnist # built-in demo data
  python3-torch        # reference values and side-by-side benchmarks only
  python3-numpy
  python3-pil          # tests read PNG masks written by fbnet
  clang                # make fuzz: libFuzzer harnesses of the parsers
  libclang-rt-14-dev   #   (its sanitizer and fuzzer runtimes)
  libomp-14-dev        #   (OpenMP for clang builds)
  protobuf-c-compiler  # ONNX export: protoc-c generates the ONNX messages' C code
  libprotobuf-c-dev    #   (protobuf-c runtime)
  libonnx-dev          #   (onnx.proto, the ONNX format's definition)
  python3-onnx         # the ONNX checker (tests)
  openmpi-bin          # data-parallel training over MPI (mpirun; tests/cli/test_mpi.sh)
  libopenmpi-dev       #   (mpicc, mpi.h: the Makefile builds with MPI when it finds mpicc)
  chromium             # tests/cli/test_report.sh renders fbnet report pages headless
)
# onnxruntime-node (npm) runs exported files in the tests. Many machines carry
# Node.js from elsewhere (nodesource bundles npm, and Debian's npm conflicts
# with it): ask Debian only for what is not already on the PATH.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
