"""hybridzoo eval: which tokens does one model predict better than another?

annotate (token categories) -> score (per-token losses) -> filters / compare (filtered means,
paired gaps with document-bootstrap CIs, regression, curves) -> report (run dir outputs).
`python -m eval` runs it all; `eval.inloop.FilteredLoss` gives filtered losses during training.
"""
