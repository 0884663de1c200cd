# shellcheck shell=bash
# A whole cetrack system for the client scenarios (tests/clients/*/run.sh),
# sourced, not run. It provides:
#
#   system_setup NAME   a temporary folder $work (logs, data, keys, certs, and
#                       whatever the client puts there) and an EXIT trap that
#                       stops the servers, prints their logs unless
#                       system_passed was called, and removes $work;
#   system_binaries     checks the binaries in $CARGO_TARGET_DIR/debug
#                       (default target/), builds them when missing;
#   system_start SUB    keys and a token for subject SUB (admin, clearance
#                       restricted, 1 h), TLS certificates, the seven domain
#                       binaries and the gateway on free loopback ports, TLS
#                       and JWT on every server, JSON logs; then a bounded
#                       wait (60 s) until every server answers the gRPC
#                       health check with SERVING. Exports CETRACK_GATEWAY
#                       (HOST:PORT of the gateway: the scenarios talk to it
#                       only), CETRACK_TOKEN and CETRACK_TLS_CA (the CA's PEM);
#   system_passed       marks the run as passed (no logs printed on exit);
#   system_apt PKG...   installs the Debian packages of the list that are not
#                       installed yet (apt-get update first only when the
#                       install fails without it); as root, or with sudo.
#
# Needs bash, python3 (standard library only, to pick free ports) and the
# binaries. CETRACK_KEEP_TMP=1 keeps $work for a look.

clients_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$clients_dir/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/debug"
domains=(semiconductors biotech energy quantum ai connectivity partnerships)
# How long the servers may take to become healthy, in seconds.
health_wait=60

work=""
pids=()
system_ok=0

system_stop_servers() {
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

system_print_logs() {
  local f
  for f in "$work"/logs/*.log; do
    [[ -e "$f" ]] || continue
    echo "---- server log: $(basename "$f") (last 200 lines) ----" >&2
    tail -n 200 "$f" >&2 || true
  done
  echo "---- end of server logs ----" >&2
}

system_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  system_stop_servers
  if ((system_ok == 0)) && [[ -n "$work" ]]; then
    system_print_logs
  fi
  if [[ -n "$work" ]]; then
    if [[ "${CETRACK_KEEP_TMP:-0}" == 1 ]]; then
      echo "kept $work" >&2
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}

system_setup() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/cetrack-$1.XXXXXX")"
  mkdir -p "$work/logs" "$work/data"
  trap system_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

system_passed() {
  system_ok=1
}

system_apt() {
  local p missing=()
  for p in "$@"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    echo "Debian packages present: $*"
    return 0
  fi
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
      echo "missing Debian packages ${missing[*]}, and not root (no sudo): install them first" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  echo "== apt-get install ${missing[*]}"
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
    --no-install-recommends "${missing[@]}")
  if ! "${install[@]}" >"$work/apt.log" 2>&1; then
    echo "(install failed; apt-get update, then again)"
    "${sudo[@]}" apt-get update -q >>"$work/apt.log" 2>&1 || true
    if ! "${install[@]}" >>"$work/apt.log" 2>&1; then
      tail -n 40 "$work/apt.log" >&2
      echo "apt-get install ${missing[*]} failed" >&2
      return 1
    fi
  fi
  echo "installed ${missing[*]}"
}

system_binaries() {
  echo "== binaries in $bin"
  local b absent=0
  for b in "${domains[@]/#/cetrack-}" cetrack-gateway cetrack; do
    [[ -x "$bin/$b" ]] || absent=1
  done
  if ((absent)); then
    echo "some binaries are missing: cargo build --workspace --bins"
    (cd "$root" && cargo build --workspace --bins)
  fi
}

# True while the process is running (a zombie, exited but not yet reaped by
# this shell, counts as gone).
system_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

system_start() {
  local sub="$1"
  local ports
  # Free loopback ports, one per server (the gateway's first).
  mapfile -t ports < <("${PYTHON:-python3}" - <<'EOF'
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
  if ((${#ports[@]} != 8)); then
    echo "could not pick 8 free ports" >&2
    return 1
  fi
  CETRACK_GATEWAY="127.0.0.1:${ports[0]}"
  export CETRACK_GATEWAY

  echo "== keys and a token (cetrack keys init, cetrack token issue --sub $sub)"
  "$bin/cetrack" keys init --dir "$work/keys"
  CETRACK_TOKEN="$("$bin/cetrack" token issue --keys "$work/keys" --sub "$sub" \
    --roles admin --clearance restricted --ttl 1h)"
  export CETRACK_TOKEN
  local auth_args=(--jwt-keys "$work/keys/jwks.json")

  echo "== TLS certificates (cetrack certs): every server speaks TLS only"
  "$bin/cetrack" certs --dir "$work/certs" --hosts localhost,127.0.0.1
  CETRACK_TLS_CA="$work/certs/ca.pem"
  export CETRACK_TLS_CA
  local tls_args=(--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key")

  echo "== starting 7 domain services and the gateway"
  local i d addr
  local domain_args=() targets=("gateway=$CETRACK_GATEWAY")
  for i in "${!domains[@]}"; do
    d="${domains[$i]}"
    addr="127.0.0.1:${ports[$((i + 1))]}"
    "$bin/cetrack-$d" --listen "$addr" --data-dir "$work/data/$d" "${auth_args[@]}" "${tls_args[@]}" \
      --log-format json >"$work/logs/$d.log" 2>&1 &
    pids+=("$!")
    domain_args+=(--domain "$d=https://$addr")
    targets+=("$d=$addr")
    echo "  $d on $addr (pid $!)"
  done
  "$bin/cetrack-gateway" --listen "$CETRACK_GATEWAY" --http-listen off "${domain_args[@]}" "${auth_args[@]}" "${tls_args[@]}" \
    --tls-ca "$CETRACK_TLS_CA" --log-format json >"$work/logs/gateway.log" 2>&1 &
  pids+=("$!")
  echo "  gateway on $CETRACK_GATEWAY (pid $!)"

  echo "== waiting for health (at most ${health_wait} s)"
  local deadline=$((SECONDS + health_wait)) pid t name last
  local -A pending=() last_error=()
  for t in "${targets[@]}"; do
    pending[${t%%=*}]="${t#*=}"
  done
  while ((${#pending[@]} > 0)); do
    for pid in "${pids[@]}"; do
      if ! system_alive "$pid"; then
        echo "server pid $pid exited before it became healthy" >&2
        return 1
      fi
    done
    for name in "${!pending[@]}"; do
      addr="${pending[$name]}"
      if last="$("$bin/cetrack" health --addr "https://$addr" --timeout-ms 1000 2>&1)"; then
        echo "  $name ($addr) SERVING"
        unset "pending[$name]"
      else
        last_error[$name]="$last"
      fi
    done
    if ((${#pending[@]} > 0)); then
      if ((SECONDS >= deadline)); then
        for name in "${!pending[@]}"; do
          echo "  $name not healthy: ${last_error[$name]:-no answer}" >&2
        done
        echo "not healthy after ${health_wait} s: ${!pending[*]}" >&2
        return 1
      fi
      sleep 0.2
    fi
  done
}
