#!/usr/bin/env bash
# README command (a): install what is missing, build, run the local demo
# federation on Fashion-MNIST with the configs in configs/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
exec "${BUILD_DIR:-build}/bin/tapestry" demo --configs configs --work work/demo "$@"
