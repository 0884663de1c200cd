#!/usr/bin/env bash
# Runs the Go client scenario against a real cetrack system:
#   1. Debian's Go toolchain, protoc, protoc-gen-go, protoc-gen-go-grpc and the
#      Go gRPC, protobuf and genproto libraries (sources under
#      /usr/share/gocode), installed with apt-get when missing;
#   2. the Go client generated from proto/ (generate.sh) into a temporary
#      GOPATH, and scenario.go built against it in GOPATH mode, offline
#      (GO111MODULE=off, GOPATH=<tmp>:/usr/share/gocode, GOPROXY=off), after
#      gofmt and go vet;
#   3. the seven domain binaries and the gateway (../system.sh: free loopback
#      ports, TLS, JWT, a bounded wait for health);
#   4. the scenario against the gateway's address only; its last line is
#      `N passed, M failed`.
# The servers are always stopped and the temporary files removed on exit; the
# servers' logs are printed when anything fails.
#
# Environment: CARGO_TARGET_DIR (default target/), CETRACK_KEEP_TMP=1 to keep
# the temporary folder for a look.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../system.sh
source "$here/../system.sh"
system_setup goclient

echo "== Debian packages for Go"
system_apt protobuf-compiler libprotobuf-dev golang-go protoc-gen-go protoc-gen-go-grpc \
  golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev \
  golang-github-golang-protobuf-1-5-dev

export GO111MODULE=off GOPROXY=off GOFLAGS=
export GOPATH="$work/gopath:/usr/share/gocode"
if [[ -z "${GOCACHE:-}" && -z "${HOME:-}" && -z "${XDG_CACHE_HOME:-}" ]]; then
  export GOCACHE="$work/gocache"
fi
echo "$(go version), $(protoc --version), $(protoc-gen-go --version), $(protoc-gen-go-grpc --version)"

echo "== generating the client from proto/"
bash "$here/generate.sh" "$work/gopath"

echo "== building the scenario (GOPATH mode)"
unformatted="$(gofmt -l "$here/scenario.go")"
if [[ -n "$unformatted" ]]; then
  echo "gofmt: $unformatted is not formatted (gofmt -d shows how)" >&2
  exit 1
fi
go vet "$here/scenario.go"
go build -o "$work/scenario" "$here/scenario.go"

system_binaries
system_start go-scenario

echo "== scenario"
"$work/scenario" -gateway "$CETRACK_GATEWAY"
system_passed
