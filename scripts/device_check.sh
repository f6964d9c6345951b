#!/usr/bin/env bash
# The GPU machine's one command (docs/benchmarks.md, "GPU"); see scripts/device_check.py.
#   bash scripts/device_check.sh [--quick] [--out device_report] [--only STEP ...] [--dry-run]
# Uses the project's .venv where there is one (a CPU checkout), else the image's python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
exec "$PYTHON" scripts/device_check.py "$@"
