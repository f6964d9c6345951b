"""scripts/demo_table.py prints each model's induction score and phase-change step beside the losses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["tiny_transformer", "tiny_hybrid", "tiny_rnn"]


def summary(acquired: dict[str, bool | None]) -> dict:
    """A minimal eval summary.json: one filter's losses and gaps, and the copying statuses."""
    losses = [{"filter": "all", "model": m, "mean_loss": 5.0, "tokens": 100} for m in MODELS]
    gaps = [{"filter": "all", "model_a": MODELS[0], "model_b": m, "domain": "all", "gap": 0.1, "ci_low": 0.05,
             "ci_high": 0.2} for m in MODELS[1:]]  # fmt: skip
    copying = [{"model": m, "acquired": a, "step": 150 if a else None, "score": {True: 2.5, False: 0.05, None: None}[a],
                "threshold": 1.0, "source": "val/induction"} for m, a in acquired.items()]  # fmt: skip
    return {"models": MODELS, "losses": losses, "gaps": gaps, "copying": copying}


def print_tables(tmp_path: Path, content: dict) -> str:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(content))
    done = subprocess.run(
        [sys.executable, "scripts/demo_table.py", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_induction_scores_phase_steps_and_footer(tmp_path) -> None:
    out = print_tables(tmp_path, summary({"tiny_transformer": False, "tiny_hybrid": True, "tiny_rnn": None}))
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("tiny_")}
    assert rows["tiny_transformer"].endswith(" 0.05  not yet") and rows["tiny_hybrid"].endswith(
        " 2.50  step 150"
    )
    assert rows["tiny_rnn"].endswith(" -  unknown")
    assert "copies in context: tiny_hybrid; not yet: tiny_transformer." in out
    assert "experiment=cpu_study" in out
    assert out.index("mean loss (nats)") < out.index("in-context copying")  # beside the loss table


def test_no_pointer_when_every_model_copies(tmp_path) -> None:
    out = print_tables(tmp_path, summary(dict.fromkeys(MODELS, True)))
    assert "copies in context: tiny_transformer, tiny_hybrid, tiny_rnn; not yet: none." in out
    assert "cpu_study" not in out


def test_a_summary_without_copying_prints_the_losses_only(tmp_path) -> None:
    content = summary(dict.fromkeys(MODELS, True))
    del content["copying"]
    out = print_tables(tmp_path, content)
    assert "mean loss (nats)" in out and "in-context copying" not in out


def test_one_model_probe_table_has_no_difference_columns(tmp_path) -> None:
    """The demo's MQAR stage scores tiny_transformer alone: accuracies, no differences to print."""
    probes = [{"probe": "mqar", "difficulty": p, "model": MODELS[0], "n": 40, "accuracy": 0.9, "trained": p <= 16}
              for p in (4, 20)]  # fmt: skip
    out = print_tables(tmp_path, {"models": MODELS[:1], "probes": probes, "probe_differences": []})
    lines = out.splitlines()
    assert lines[0] == "probe accuracy per model"
    assert lines[2].split() == ["mqar", "4", "40", "0.900"]
    assert lines[3].endswith("(beyond training: length generalisation)")
