#!/usr/bin/env bash
# Generates the Java client of cetrack (messages and gRPC stubs) from the
# contract in proto/ with Debian's protoc (protobuf-compiler) and gRPC Java
# plugin (protobuf-compiler-grpc-java-plugin, /usr/bin/grpc_java_plugin),
# into OUT_DIR as Java sources of the package org.cetrack.cet.v1 (the files
# declare java_package and java_multiple_files: no option is needed and
# nothing is edited by hand). The well-known types come with protoc (Debian's
# libprotobuf-dev puts them in /usr/include, protoc's default include path);
# their classes are in protobuf-java.
#
# Usage: generate.sh [OUT_DIR]   (default: ./generated, git-ignored)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$here/generated}"
plugin="${GRPC_JAVA_PLUGIN:-/usr/bin/grpc_java_plugin}"

rm -rf "$out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
mapfile -t files < <(cd "$root/proto" && find cet -name '*.proto' | sort)
(cd "$root" && protoc \
  -I proto \
  --java_out="$out" \
  --plugin=protoc-gen-grpc-java="$plugin" \
  --grpc-java_out="$out" \
  "${files[@]}")
echo "generated $(find "$out" -name '*.java' | wc -l) Java sources in $out/org/cetrack/cet/v1 from ${#files[@]} .proto files"
