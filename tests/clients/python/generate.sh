#!/usr/bin/env bash
# Generates the Python client of cetrack (messages and gRPC stubs) from the
# contract in proto/ into ./generated (git-ignored), with grpc_tools.protoc.
# grpc_tools ships the google/protobuf well-known types, so only proto/ is on
# the include path.
#
# Usage: generate.sh [PYTHON]   (default: python3; it must have the packages
# of requirements.txt installed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${1:-${PYTHON:-python3}}"
out="$here/generated"

rm -rf "$out"
mkdir -p "$out"
mapfile -t files < <(cd "$root/proto" && find cet -name '*.proto' | sort)
(cd "$root" && "$python" -m grpc_tools.protoc \
  -I proto \
  --python_out="$out" \
  --pyi_out="$out" \
  --grpc_python_out="$out" \
  "${files[@]}")
echo "generated $(find "$out" -name '*.py' | wc -l) Python modules in $out from ${#files[@]} .proto files"
