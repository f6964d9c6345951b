"""Over snapshots: the induction score per run and step, and the paired gap curves with CIs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from eval_helpers import run_eval

from eval.curves import gap_curves


def test_gap_curves_pair_runs_at_the_steps_both_have() -> None:
    table = pd.DataFrame({"doc_id": [0, 0, 1, 1, 2, 2]})
    masks = {"all": np.ones(6, bool), "first": np.array([1, 0, 1, 0, 1, 0], bool)}
    ones, zeros = np.ones(6), np.zeros(6)
    losses = {("a", 10): ones, ("a", 20): ones * 3, ("b", 10): zeros, ("b", 20): ones, ("b", 30): zeros}
    gaps = gap_curves(table, masks, losses, ["a", "b"], n_boot=50, seed=0)
    assert list(gaps.columns[:4]) == ["model_a", "model_b", "step", "filter"]
    assert sorted(set(gaps["step"])) == [10, 20]  # step 30 has only run b
    by_step = gaps[gaps["filter"] == "all"].set_index("step")
    assert by_step.loc[10, "gap"] == pytest.approx(1.0) and by_step.loc[20, "gap"] == pytest.approx(2.0)
    assert (gaps["ci_low"] <= gaps["gap"]).all() and (gaps["gap"] <= gaps["ci_high"]).all()
    assert gaps[gaps["filter"] == "first"]["tokens"].tolist() == [3, 3]


@pytest.mark.slow
def test_eval_over_snapshots_plots_induction_and_gap_curves(tmp_path, tiny_models) -> None:
    runs = {}
    for name in ("transformer", "hybrid"):
        for step in (100, 200):
            shutil.copytree(tiny_models[name], tmp_path / name / "snapshots" / f"step_{step}")
        runs[name] = tmp_path / name / "snapshots"
    proc, out = run_eval(tmp_path, [tiny_models["transformer"], tiny_models["hybrid"]],
                         *[f"+curves.{n}=['{d}/step_*']" for n, d in runs.items()], "filters.favoured.min_count=1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    induction = pd.DataFrame(summary["induction_curves"])
    assert len(induction) == 4 and set(induction["run"]) == {"transformer", "hybrid"}
    assert (induction["score"].abs() < 0.2).all()  # random weights do not copy
    gaps = pd.DataFrame(summary["gap_curves"])
    assert set(gaps["step"]) == {100, 200} and set(zip(gaps["model_a"], gaps["model_b"])) == {
        ("transformer", "hybrid")
    }
    assert {"gap_curves.png", "induction_curves.png"} <= {p.name for p in (out / "plots").glob("*.png")}
    report = (out / "report.md").read_text()
    assert "## Induction score over training" in report and "## Paired gaps over training" in report
    assert [c["acquired"] for c in summary["copying"]] == [None, None]  # no metrics.jsonl beside the models
