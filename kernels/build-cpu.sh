#!/usr/bin/env bash
# Compiles the CPU backend's native micro-kernels under $1 (*.c) into $2/linux-x86_64/librefldmseg_cpu_avx2.so
# with -mavx2 -mfma -mf16c (any AVX2 + FMA x86-64 runs it; no -march=native, so the file is portable) and
# -ffp-contract=off (no multiply and add fused unless the code asks: the Java kernels round each); the AVX-512
# and AMX kernels in the same library carry their own target pragmas and are called only where the CPU has them.
# Without gcc, or off x86-64 Linux, the build still passes: the CPU backend then uses its Vector API kernels only.
set -euo pipefail
src=$1 out=$2/linux-x86_64
lib="$out/librefldmseg_cpu_avx2.so"
cc=${CC:-$(command -v gcc || command -v cc || true)}
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ] || [ -z "$cc" ]; then
  rm -f "$lib"
  echo "[kernels] no C compiler for Linux x86-64 here: no native CPU kernel built (the CPU backend uses its Vector API kernels)."
  exit 0
fi
if [ -f "$lib" ] && [ -z "$(find "$src" \( -name '*.c' -o -name '*.h' \) -newer "$lib")" ] && [ ! "$0" -nt "$lib" ]; then
  echo "[kernels] native CPU kernel up to date"
  exit 0
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -O3 -mavx2 -mfma -mf16c -mprfchw -fPIC -shared -fno-strict-aliasing -ffp-contract=off -Wall -Werror -o "$tmp/lib.so" "$src"/*.c
mv "$tmp/lib.so" "$lib"
echo "[kernels] $("$cc" --version | head -1): wrote $lib ($(stat -c %s "$lib") bytes)"
