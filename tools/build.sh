#!/usr/bin/env bash
# Configures and builds Tapestry in Release into ${BUILD_DIR:-build}.
# Extra arguments go to CMake (e.g. -DCMAKE_PREFIX_PATH=... for another LibTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j"$(nproc)"
