#!/usr/bin/env bash
# Builds the cetrack image from what is on this machine: no registry, no base
# image, no network during `docker build`. One image holds every binary (the
# gateway, the seven domain services and the `cetrack` command line) on
# `FROM scratch`, with the dynamic loader and the shared libraries `ldd` lists
# for them, a numeric user 10001 (no /etc/passwd) and a /data directory owned
# by that user (so named volumes mounted there start with that owner).
#
#   deploy/build-images.sh                  cargo build --release --bins, then docker build
#   deploy/build-images.sh --no-build       use the binaries already in target/release
#   deploy/build-images.sh --bin-dir DIR    use prebuilt binaries from DIR
#   deploy/build-images.sh --profile NAME   build and use cargo profile NAME instead of release
#   deploy/build-images.sh --tag NAME:TAG   tag the image NAME:TAG (repeatable) instead of
#                                           the default tags cetrack:<version> and cetrack:local
#
# The binaries must be built on a system whose glibc is 2.34 or later (name
# resolution without NSS modules); the image runs them with that same glibc.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"

BINS=(
    cetrack
    cetrack-gateway
    cetrack-semiconductors
    cetrack-biotech
    cetrack-energy
    cetrack-quantum
    cetrack-ai
    cetrack-connectivity
    cetrack-partnerships
)

build=1
bin_dir=""
profile="release"
tags=()

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; build=0; shift ;;
        --profile) profile="${2:?--profile needs a name}"; shift ;;
        --tag) tags+=("${2:?--tag needs NAME:TAG}"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build-images: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-images: $1 is required" >&2; exit 1; }; }
need docker
need ldd

cd "$repo"

# The workspace's version (the `cetrack` package) and target directory.
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
version="${version:-0.0.0}"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    revision="$revision-dirty"
fi
if [ ${#tags[@]} -eq 0 ]; then
    tags=("cetrack:$version" "cetrack:local")
fi

if [ -z "$bin_dir" ]; then
    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    case "$profile" in
        dev) bin_dir="$target_dir/debug" ;;
        *) bin_dir="$target_dir/$profile" ;;
    esac
fi

if [ "$build" = 1 ]; then
    need cargo
    # Versions come from Cargo.lock; not --locked, so that a lock file missing
    # an entry for a newly added dependency does not stop an operator's build.
    echo "== cargo build --profile $profile --bins"
    start=$SECONDS
    cargo build --profile "$profile" --bins
    echo "   built in $((SECONDS - start)) s"
fi

for b in "${BINS[@]}"; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "build-images: $bin_dir/$b is missing (build first, or drop --no-build)" >&2
        exit 1
    fi
done

ctx="$(mktemp -d "${TMPDIR:-/tmp}/cetrack-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$ctx/data"
chmod 1777 "$root/tmp"
chmod 0755 "$ctx/data"

# The binaries, as cargo built them.
for b in "${BINS[@]}"; do
    cp "$bin_dir/$b" "$root/usr/local/bin/$b"
    chmod 0755 "$root/usr/local/bin/$b"
done

# The dynamic loader and every library ldd resolves, at the same paths (the
# loader's path is the one written in the binaries).
libs=()
for b in "${BINS[@]}"; do
    out="$(ldd "$bin_dir/$b" 2>&1)" || {
        case "$out" in
            *"not a dynamic executable"*|*"statically linked"*) continue ;;
            *) echo "build-images: ldd $b failed: $out" >&2; exit 1 ;;
        esac
    }
    if grep -q "not found" <<<"$out"; then
        echo "build-images: $b needs a library this machine lacks:" >&2
        grep "not found" <<<"$out" >&2
        exit 1
    fi
    while read -r path; do
        [ -n "$path" ] && libs+=("$path")
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
for lib in "${libs[@]}"; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# Hosts first from /etc/hosts (written by Docker), then DNS (Docker's
# embedded server knows the compose service names).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

cp "$here/Dockerfile" "$ctx/Dockerfile"

echo "== docker build (${tags[*]}), version $version, revision $revision"
echo "   libraries: ${libs[*]}"
tag_args=()
for t in "${tags[@]}"; do tag_args+=(-t "$t"); done
start=$SECONDS
docker build --quiet \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" \
    "${tag_args[@]}" "$ctx" >/dev/null
echo "   image built in $((SECONDS - start)) s"

# Every binary must start inside the image (the loader finds its libraries).
for b in "${BINS[@]}"; do
    if ! docker run --rm --network none "${tags[0]}" "$b" --version >/dev/null; then
        echo "build-images: $b does not start inside ${tags[0]}" >&2
        exit 1
    fi
done

docker image ls --format '   {{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' "${tags[0]}"
for t in "${tags[@]}"; do echo "$t"; done
