#!/usr/bin/env bash
# Build a wheel that pip would compile from source ONCE per machine, and install it into a venv from then on.
#   scripts/cached_wheel.sh PYTHON SPEC CACHE_ROOT [CMAKE_ARGS]
# The wheel lives in CACHE_ROOT/<name>-<key>/, key = sha256 of (spec, CMAKE_ARGS, Python tag, platform), so a
# wheel built with other flags, for another Python or another architecture is never reused: a different key is a
# different folder, built afresh. pip's own wheel cache keys by version only (hence the kit never uses it for this).
# Concurrent builds are safe: each builds in its own temporary folder and the first to finish publishes by rename.
#   scripts/cached_wheel.sh --dir PYTHON SPEC CACHE_ROOT [CMAKE_ARGS]   prints the folder only (builds nothing)
set -euo pipefail
only_dir=0; [ "${1:-}" = "--dir" ] && { only_dir=1; shift; }
py=$1; spec=$2; root=$3; cmake=${4:-}
tag=$("$py" -c 'import sys, platform, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform(), platform.machine())')
key=$(printf '%s\n%s\n%s\n' "$spec" "$cmake" "$tag" | sha256sum | cut -c1-16)
name=$(printf '%s' "$spec" | sed 's/[^A-Za-z0-9_.-]/_/g')
dir="$root/$name-$key"
[ "$only_dir" = 1 ] && { echo "$dir"; exit 0; }
if ! ls "$dir"/*.whl >/dev/null 2>&1; then
  mkdir -p "$root"
  tmp=$(mktemp -d "$root/.build-$name-XXXXXX")
  echo "cached_wheel: building $spec once for this machine (CMAKE_ARGS=$cmake) -> $dir"
  CMAKE_ARGS="$cmake" "$py" -m pip wheel -q --no-cache-dir --no-deps -w "$tmp" "$spec"
  printf 'spec: %s\nCMAKE_ARGS: %s\npython/platform: %s\nbuilt: %s on %s\n' "$spec" "$cmake" "$tag" "$(date -u +%FT%TZ)" \
    "$(hostname)" > "$tmp/BUILD-KEY.txt"
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"     # another build published first: keep that one
else
  echo "cached_wheel: reusing $(basename "$dir"/*.whl) built with the same flags ($dir)"
fi
"$py" -m pip install -q --no-deps --no-index "$dir"/*.whl
