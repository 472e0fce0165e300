#!/usr/bin/env bash
# Fails when a dependency rule of docs/architecture.md is broken: heavy
# headers in public headers, LibTorch outside worker/ml, I/O in the pure
# round logic or aggregation maths, coordinator <-> worker includes.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
violation() { echo "dependency rule broken: $1"; echo "$2" | sed 's/^/    /'; status=1; }

check() {  # description, grep pattern, files...
  local what="$1" pattern="$2"; shift 2
  local hits rc=0
  # /dev/null keeps grep off stdin when a glob matched no file; exit 1 is
  # "no match", anything above an error that must not pass.
  hits=$(grep -nE -- "$pattern" /dev/null "$@") || rc=$?
  if [ "$rc" -gt 1 ]; then violation "$what: grep failed (exit $rc)" "$*"; return; fi
  [ -n "$hits" ] && violation "$what" "$hits"
  return 0
}

shopt -s globstar nullglob
check "common/ must not use LibTorch or CUDA" '#include *[<"](torch/|cuda|nccl)' common/**/*.{h,cpp}
check "coordinator/ must not use LibTorch" '#include *[<"]torch/' coordinator/**/*.{h,cpp,cu,cuh}
check "coordinator/ must not include worker/" '#include *"worker/' coordinator/**/*.{h,cpp}
check "worker/ must not include coordinator/" '#include *"coordinator/' worker/**/*.{h,cpp}
check "round logic must stay pure (no Asio, Protobuf, Torch, CUDA)" '#include *[<"](boost/|proto/|torch/|cuda|google/)' coordinator/round_logic.*
check "aggregation maths must not do I/O or use Protobuf/Torch" '#include *[<"](boost/|proto/|torch/|google/)' coordinator/aggregation/**/*.{h,cpp,cu,cuh}
public_headers=$(printf '%s\n' common/**/*.h coordinator/**/*.h worker/**/*.h tools/**/*.h | grep -v '_impl\.h$' | grep -v '\.cuh$')
check "public headers must not include Asio, LibTorch, CUDA or NCCL (use *_impl.h)" '#include *[<"](boost/asio|torch/|cuda|nccl)' $public_headers
[ $status -eq 0 ] && echo "dependency rules hold"
exit $status
