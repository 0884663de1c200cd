#!/usr/bin/env bash
# Runs the Python client scenario against a real cetrack system:
#   1. a throw-away virtualenv with the pinned packages of requirements.txt;
#   2. the Python client generated from proto/ (generate.sh);
#   3. the seven domain binaries and the gateway from target/debug (built when
#      missing), on free loopback ports, over a temporary data directory, with
#      JSON logs;
#   4. a bounded wait until every server answers the gRPC health check;
#   5. scenario.py, whose last line is `N passed, M failed`.
# The servers are always stopped and the temporary files removed on exit; the
# servers' logs are printed when anything fails.
#
# Environment: PYTHON (default python3), CARGO_TARGET_DIR (default target/),
# CETRACK_KEEP_TMP=1 to keep the temporary folder (logs, data) for a look.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-python3}"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/debug"
domains=(semiconductors biotech energy quantum ai connectivity partnerships)
# How long the servers may take to become healthy, in seconds.
health_wait=60

work="$(mktemp -d "${TMPDIR:-/tmp}/cetrack-pyclient.XXXXXX")"
mkdir -p "$work/logs" "$work/data"
pids=()
ok=0

stop_servers() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # A graceful stop flushes the stores; give it 10 s, then kill.
  local waited=0
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

print_logs() {
  local f
  for f in "$work"/logs/*.log; do
    [[ -e "$f" ]] || continue
    echo "---- server log: $(basename "$f") (last 200 lines) ----" >&2
    tail -n 200 "$f" >&2 || true
  done
  echo "---- end of server logs ----" >&2
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_servers
  if ((ok == 0)); then
    print_logs
  fi
  if [[ "${CETRACK_KEEP_TMP:-0}" == 1 ]]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

echo "== binaries in $bin"
missing=0
for b in "${domains[@]/#/cetrack-}" cetrack-gateway cetrack; do
  [[ -x "$bin/$b" ]] || missing=1
done
if ((missing)); then
  echo "some binaries are missing: cargo build --workspace --bins"
  (cd "$root" && cargo build --workspace --bins)
fi

# Free loopback ports, one per server (the gateway's first).
mapfile -t ports < <("$py" - <<'EOF'
import socket
socks = []
for _ in range(8):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
)
gateway_addr="127.0.0.1:${ports[0]}"

echo "== keys and a token (cetrack keys init, cetrack token issue)"
"$bin/cetrack" keys init --dir "$work/keys"
CETRACK_TOKEN="$("$bin/cetrack" token issue --keys "$work/keys" --sub python-scenario \
  --roles admin --clearance restricted --ttl 1h)"
export CETRACK_TOKEN
auth_args=(--jwt-keys "$work/keys/jwks.json")

echo "== TLS certificates (cetrack certs): every server speaks TLS only"
"$bin/cetrack" certs --dir "$work/certs" --hosts localhost,127.0.0.1
export CETRACK_TLS_CA="$work/certs/ca.pem"
tls_args=(--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key")

echo "== starting 7 domain services and the gateway"
declare -A addr_of
domain_args=()
health_targets=("gateway=$gateway_addr")
for i in "${!domains[@]}"; do
  d="${domains[$i]}"
  addr="127.0.0.1:${ports[$((i + 1))]}"
  "$bin/cetrack-$d" --listen "$addr" --data-dir "$work/data/$d" "${auth_args[@]}" "${tls_args[@]}" --log-format json \
    >"$work/logs/$d.log" 2>&1 &
  pids+=("$!")
  addr_of[$d]="$addr"
  domain_args+=(--domain "$d=https://$addr")
  health_targets+=("$d=$addr")
  echo "  $d on $addr (pid $!)"
done
"$bin/cetrack-gateway" --listen "$gateway_addr" "${domain_args[@]}" "${auth_args[@]}" "${tls_args[@]}" \
  --tls-ca "$CETRACK_TLS_CA" --log-format json \
  >"$work/logs/gateway.log" 2>&1 &
pids+=("$!")
echo "  gateway on $gateway_addr (pid $!)"

echo "== waiting for health (at most ${health_wait} s)"
"$py" - "$health_wait" "${pids[*]}" "${health_targets[@]}" <<'EOF'
import os, sys, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

limit, pids, targets = float(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
deadline = time.monotonic() + limit
pending = dict(t.split("=", 1) for t in targets)
last_error = {}
while pending and time.monotonic() < deadline:
    for pid in pids:
        # The servers are the shell's children: an exited one is gone or a
        # zombie until the shell reaps it.
        try:
            with open(f"/proc/{pid}/stat") as f:
                alive = f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            alive = False
        if not alive:
            sys.exit(f"server pid {pid} exited before it became healthy")
    for name, addr in list(pending.items()):
        try:
            creds = grpc.ssl_channel_credentials(open(os.environ["CETRACK_TLS_CA"], "rb").read())
            with grpc.secure_channel(addr, creds) as ch:
                r = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1)
            if r.status == health_pb2.HealthCheckResponse.SERVING:
                print(f"  {name} ({addr}) SERVING")
                del pending[name]
            else:
                last_error[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        except grpc.RpcError as e:
            last_error[name] = f"{e.code().name}: {e.details()}"
    if pending:
        time.sleep(0.2)
if pending:
    for name in pending:
        print(f"  {name} not healthy: {last_error.get(name, 'no answer')}", file=sys.stderr)
    sys.exit(f"not healthy after {limit:.0f} s: {', '.join(pending)}")
EOF

echo "== scenario"
# Work in quantum; energy is the second domain of the portfolio. Every call
# goes to the gateway's address: it serves every domain's API too.
"$py" "$here/scenario.py" --gateway "$gateway_addr" \
  --domain "quantum=$gateway_addr" --domain "energy=$gateway_addr"
ok=1
