#!/usr/bin/env bash
# Runs the Python client scenario against a real cetrack system:
#   1. a throw-away virtualenv with the pinned packages of requirements.txt;
#   2. the Python client generated from proto/ (generate.sh);
#   3. the seven domain binaries and the gateway from target/debug (built when
#      missing), on free loopback ports, over a temporary data directory, with
#      JSON logs, TLS and JWT (../system.sh, shared with the Go and Java
#      scenarios);
#   4. a bounded wait until every server answers the gRPC health check;
#   5. scenario.py, whose last line is `N passed, M failed`.
# The servers are always stopped and the temporary files removed on exit; the
# servers' logs are printed when anything fails.
#
# Environment: PYTHON (default python3), CARGO_TARGET_DIR (default target/),
# CETRACK_KEEP_TMP=1 to keep the temporary folder (logs, data) for a look.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
# shellcheck source-path=SCRIPTDIR source=../system.sh
source "$here/../system.sh"
system_setup pyclient

echo "== Python environment ($("$python" --version 2>&1)) in $work"
pip_quiet=(--quiet --disable-pip-version-check --no-input)
if "$python" -m venv "$work/venv" >/dev/null 2>&1; then
  py="$work/venv/bin/python"
  "$py" -m pip install "${pip_quiet[@]}" -r "$here/requirements.txt"
else
  # No venv module: install into a folder of its own and put it on the path.
  echo "(no venv module: pip install --target)"
  "$python" -m pip install "${pip_quiet[@]}" --target "$work/site" -r "$here/requirements.txt"
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
  py="$python"
fi
"$py" -c 'import grpc, grpc_tools, grpc_status, grpc_health, google.protobuf as p; print("grpcio", grpc.__version__, "protobuf", p.__version__)'

echo "== generating the client from proto/"
bash "$here/generate.sh" "$py"

system_binaries
system_start python-scenario

echo "== scenario"
# Work in quantum; energy is the second domain of the portfolio. Every call
# goes to the gateway's address: it serves every domain's API too.
"$py" "$here/scenario.py" --gateway "$CETRACK_GATEWAY" \
  --domain "quantum=$CETRACK_GATEWAY" --domain "energy=$CETRACK_GATEWAY"
system_passed
