#!/usr/bin/env bash
# Runs the Java client scenario against a real cetrack system:
#   1. Debian's JDK, protoc, gRPC Java plugin and jars (grpc-java with its
#      Netty transport, protobuf-java, the Google common protos for
#      google.rpc.Status and BadRequest, and what they need at run time:
#      Guava, Netty, PerfMark, Gson; javax.annotation.Generated, which the
#      generated stubs carry, from the Geronimo annotation spec; netty-tcnative,
#      see below), installed with apt-get when missing;
#   2. the Java client generated from proto/ (generate.sh) into a temporary
#      folder and compiled with Scenario.java by javac against the jars of
#      /usr/share/java;
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
system_setup javaclient

echo "== Debian packages for Java"
system_apt default-jdk-headless protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin \
  libgrpc-java libprotobuf-java libgoogle-common-protos-java libguava-java libnetty-java \
  libperfmark-java libgoogle-gson-java libgeronimo-annotation-1.3-spec-java \
  libnetty-tcnative-java libnetty-tcnative-jni

# The jars, by their version-less names in /usr/share/java.
jars=(
  grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
  protobuf proto-google-common-protos
  guava error_prone_annotations jsr305 perfmark-api gson
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common
  netty-handler netty-handler-proxy netty-resolver netty-transport netty-tcnative
  geronimo-annotation-1.3-spec
)
cp=""
for j in "${jars[@]}"; do
  f="/usr/share/java/$j.jar"
  if [[ ! -e "$f" ]]; then
    echo "missing $f" >&2
    exit 1
  fi
  cp="${cp:+$cp:}$f"
done
# TLS: gRPC needs ALPN (it negotiates h2). Debian's Netty 4.1.48 ships
# without its JDK ALPN classes, so the JDK's TLS cannot be used; Netty's
# OpenSSL binding, netty-tcnative, can. Debian installs its library as
# libnetty-tcnative.so, while Netty loads `netty_tcnative` (and the library
# checks that its own file is named so): a copy under that name, on
# java.library.path, is the whole fix. Without it every call fails with
# "JDK provider does not support ALPN protocol".
tcnative="$(dpkg -L libnetty-tcnative-jni | grep -m1 '/libnetty-tcnative\.so$' || true)"
if [[ -z "$tcnative" ]]; then
  echo "libnetty-tcnative-jni holds no libnetty-tcnative.so" >&2
  exit 1
fi
mkdir -p "$work/native"
cp "$tcnative" "$work/native/libnetty_tcnative.so"

java_version="$(java -version 2>&1)"
echo "${java_version%%$'\n'*}; $(protoc --version)"

echo "== generating the client from proto/"
bash "$here/generate.sh" "$work/generated"

echo "== compiling the client and Scenario.java"
mapfile -t sources < <(find "$work/generated" -name '*.java' | sort)
mkdir -p "$work/classes"
javac -nowarn -encoding UTF-8 -d "$work/classes" -cp "$cp" "${sources[@]}" "$here/Scenario.java"

system_binaries
system_start java-scenario

echo "== scenario"
java -Djava.library.path="$work/native" -cp "$work/classes:$cp" Scenario "$CETRACK_GATEWAY"
system_passed
