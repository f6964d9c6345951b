"""Phase detection: the first step at which a run's in-loop induction score crossed a threshold.

    python -m eval.phase RUN_DIR [RUN_DIR ...] [--threshold 1.0] [--table]

prints one line per run and writes RUN_DIR/phase.json; with `--table`, also a markdown table of
every evaluation: per run its `val/induction` and `val/packed_loss`, side by side on one step axis
(runs trained on the same batches with the same eval_interval line up), to read when each model
started copying beside how far its loss had come.

A transformer acquires in-context copying abruptly (the induction-head phase change, Olsson et al.
2022): `val/induction` (`eval.inloop_induction`) sits near 0 and then rises by several nats within
a few hundred steps. The phase step is the first evaluation whose score is at least `threshold`
nats (1.0 by default); `phase.json` records it with the tokens seen by then, or `step: null` when
the score never got there. The trainer's default induction callback writes it at the end of every
run; this entry point rebuilds it from any `metrics.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from models.errors import UserError, exit_on_user_error

METRIC = "val/induction"
VALIDATION_LOSS = "val/packed_loss"
DEFAULT_THRESHOLD = 1.0
PHASE_FILE = "phase.json"


def read_metrics(path: Path) -> list[dict]:
    """The records of a `metrics.jsonl` (a run dir or the file itself), in the order written."""
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{str(path)!r} has no metrics.jsonl; pass a training run directory.")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def detect_phase(records: list[dict], threshold: float = DEFAULT_THRESHOLD) -> dict:
    """{metric, threshold, step, tokens, score, final_step, final_score} for the first record whose
    `val/induction` is >= threshold (step, tokens and score null when none is); the final pair is
    the last measurement, null when the run logged none."""
    measured = [r for r in records if _finite(r.get(METRIC))]
    crossed = next((r for r in measured if r[METRIC] >= threshold), None)
    return {
        "metric": METRIC,
        "threshold": threshold,
        "step": crossed["step"] if crossed else None,
        "tokens": _tokens_at(records, crossed["step"]) if crossed else None,
        "score": crossed[METRIC] if crossed else None,
        "final_step": measured[-1]["step"] if measured else None,
        "final_score": measured[-1][METRIC] if measured else None,
    }


def describe_phase(phase: dict) -> str:
    """One line: when the run crossed the threshold, or that it did not."""
    if phase["final_step"] is None:
        return f"induction: no {METRIC} logged, so no phase change can be detected."
    if phase["step"] is None:
        return (f"induction: no phase change: {METRIC} {phase['final_score']:.2f} < {phase['threshold']:g} nat "
                f"at step {phase['final_step']} (the last evaluation).")  # fmt: skip
    tokens = f" ({phase['tokens']:,} tokens)" if phase["tokens"] is not None else ""
    return (f"induction: phase change at step {phase['step']}{tokens}: {METRIC} {phase['score']:.2f} >= "
            f"{phase['threshold']:g} nat.")  # fmt: skip


def write_phase(run_dir: Path, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Detect the phase step from `run_dir/metrics.jsonl` and write `run_dir/phase.json` (atomically)."""
    phase = detect_phase(read_metrics(run_dir), threshold)
    fd, tmp = tempfile.mkstemp(prefix=".phase.", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(phase, indent=2) + "\n")
    os.replace(tmp, run_dir / PHASE_FILE)
    return phase


def evaluation_table(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """Step-indexed `<run> induction` and `<run> val loss` columns, one row per step any run evaluated
    (NaN where a run did not; a step logged twice, as the final evaluation can be, keeps its last)."""
    columns = {}
    for name, records in runs.items():
        evaluated = pd.DataFrame(
            [r for r in records if _finite(r.get(METRIC)) or _finite(r.get(VALIDATION_LOSS))]
        )
        if evaluated.empty:
            continue
        evaluated = evaluated.drop_duplicates("step", keep="last").set_index("step")
        for metric, label in ((METRIC, "induction"), (VALIDATION_LOSS, "val loss")):
            if metric in evaluated:
                columns[f"{name} {label}"] = evaluated[metric]
    return pd.DataFrame(columns).sort_index()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _tokens_at(records: list[dict], step: int) -> int | None:
    """Tokens seen by `step`: from a record of that step, else at the rate of the last step logged
    with `tokens_seen` (every step of a run holds the same number of tokens)."""
    counted = [r for r in records if "tokens_seen" in r and r.get("step")]
    exact = [r["tokens_seen"] for r in counted if r["step"] == step]
    if exact:
        return int(exact[0])
    return int(step * counted[-1]["tokens_seen"] / counted[-1]["step"]) if counted else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="training run directories (each holds metrics.jsonl)")  # fmt: skip
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="nats (default 1.0)")
    parser.add_argument("--table", action="store_true", help="also print every evaluation, runs side by side")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        records = {run.name: read_metrics(run) for run in args.run_dirs}
        if len(records) < len(args.run_dirs):
            raise UserError(
                "two RUN_DIRs share a directory name; the table labels runs by it, so pass distinct ones."
            )
        for run in args.run_dirs:
            phase = write_phase(run, args.threshold)
            print(f"{run.name}: {describe_phase(phase)} (wrote {run / PHASE_FILE})")
    if args.table:
        print()
        print(evaluation_table(records).to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
