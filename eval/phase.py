"""Phase detection: the first step at which a run's in-loop induction score crossed a threshold.

    python -m eval.phase RUN_DIR [--threshold 1.0]     # prints one line, writes RUN_DIR/phase.json

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

from models.errors import UserError, exit_on_user_error

METRIC = "val/induction"
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
    parser.add_argument("run_dir", type=Path, help="a training run directory (holds metrics.jsonl)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="nats (default 1.0)")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        phase = write_phase(args.run_dir, args.threshold)
    print(describe_phase(phase))
    print(f"wrote {args.run_dir / PHASE_FILE}")


if __name__ == "__main__":
    main()
