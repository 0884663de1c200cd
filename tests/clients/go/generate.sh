#!/usr/bin/env bash
# Generates the Go client of cetrack (messages and gRPC stubs) from the
# contract in proto/ with Debian's protoc, protoc-gen-go and protoc-gen-go-grpc,
# into a GOPATH: GOPATH_DIR/src/<go_package of the files>, i.e.
# GOPATH_DIR/src/github.com/cetrack/cetrack/gen/go/cet/v1 (package cetv1).
# The files declare go_package, so no `M` flag is needed and nothing is edited
# by hand. The well-known types (google/protobuf/*.proto) come with protoc
# (Debian's libprotobuf-dev puts them in /usr/include, protoc's default
# include path); their Go code is in google.golang.org/protobuf.
#
# Usage: generate.sh [GOPATH_DIR]   (default: ./generated, git-ignored)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
gopath="${1:-$here/generated}"
pkg="github.com/cetrack/cetrack/gen/go/cet/v1"

mkdir -p "$gopath/src"
gopath="$(cd "$gopath" && pwd)"
rm -rf "${gopath:?}/src/$pkg"
mapfile -t files < <(cd "$root/proto" && find cet -name '*.proto' | sort)
(cd "$root" && protoc \
  -I proto \
  --go_out="$gopath/src" \
  --go-grpc_out="$gopath/src" \
  "${files[@]}")
n="$(find "$gopath/src/$pkg" -name '*.go' | wc -l)"
if ((n == 0)); then
  echo "generate.sh: nothing generated in $gopath/src/$pkg (does every file declare go_package \"$pkg;cetv1\"?)" >&2
  exit 1
fi
echo "generated $n Go files in $gopath/src/$pkg from ${#files[@]} .proto files"
