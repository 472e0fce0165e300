#!/usr/bin/env bash
# Installs the Debian 12 packages Tapestry needs, only those that are missing.
# libopenblas0-pthread replaces the reference BLAS behind Debian's LibTorch
# (through the libblas.so.3 alternative): local training steps run 2-6x
# faster on one core (docs/performance.md). The threaded build is the one
# that is safe to call from several threads at once; the trainer keeps its
# pool to one thread, as workers parallelise by process and LibTorch threads.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libtorch-dev libboost-dev libssl-dev zlib1g-dev
  libprotobuf-dev protobuf-compiler nlohmann-json3-dev libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas0-pthread
  dataset-fashion-mnist
  fortunes fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-ru
  openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages are present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
# sudo drops the environment, so the frontend goes through env; a fresh VM's
# unattended upgrades may hold the dpkg lock for a while at first boot.
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
"${apt[@]}" update -q
"${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"
