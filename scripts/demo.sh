#!/usr/bin/env bash
# The newcomer demo. Until the data, training and eval pipelines land, it shows the three tiny
# architectures the demo will train and compare: same blocks, different layer mixes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
for name in tiny_transformer tiny_hybrid tiny_rnn; do
  "$PY" -m models.summary "$name"
  echo
done
