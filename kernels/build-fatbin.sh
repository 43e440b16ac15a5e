#!/usr/bin/env bash
# Compiles every .cu under $1 into one fatbin at $2/refldmseg.fatbin
# (SASS for sm_80, sm_86, sm_89, sm_90a plus compute_90 PTX for newer GPUs).
# Without nvcc the build still passes: the CUDA backend then reports itself unavailable.
set -euo pipefail
src=$1 out=$2
mkdir -p "$out"
nvcc_bin=${NVCC:-$(command -v nvcc || true)}
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc_bin" ]; then
  rm -f "$out/refldmseg.fatbin"
  echo "[kernels] nvcc not found: no fatbin built, the CUDA backend will be unavailable (CPU backend only)."
  exit 0
fi
stamp="$out/refldmseg.fatbin"
if [ -f "$stamp" ] && [ -z "$(find "$src" -name '*.cu' -o -name '*.cuh' | xargs -r -I{} find {} -newer "$stamp")" ]; then
  echo "[kernels] fatbin up to date"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$src"/*.cu > "$tmp/all.cu"
echo "[kernels] $("$nvcc_bin" --version | tail -1): compiling $(ls "$src"/*.cu | wc -l) sources"
"$nvcc_bin" -fatbin -O3 -std=c++17 -I"$src" \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 \
  -gencode arch=compute_90a,code=sm_90a \
  -gencode arch=compute_90,code=compute_90 \
  -o "$tmp/refldmseg.fatbin" "$tmp/all.cu"
mv "$tmp/refldmseg.fatbin" "$out/refldmseg.fatbin"
echo "[kernels] wrote $out/refldmseg.fatbin ($(stat -c %s "$out/refldmseg.fatbin") bytes)"
