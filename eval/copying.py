"""Has each compared model acquired in-context copying, and when? The report's sentences and warning.

A gap on a copy filter (`copy5`, `repeat_n >= k`) between a model that copies in context and one
that does not yet measures a capability one of them lacks, not how well each does it. So every
`python -m eval` states, per model, whether its induction score has reached the threshold
(`report.induction_threshold`, 1.0 nat by default), taken from, in order:

1. its training run's `metrics.jsonl` (the in-loop `val/induction`, `eval.phase`): the run dir is
   the parent of `final/`, or of `snapshots/` for `snapshots/step_N` (then only steps <= N count);
2. the run's `phase.json`, when the metrics are gone;
3. the `induction` probe of this eval (`probes=[induction]`), at the length closest to 128;

and says "unknown" otherwise. When the models stand on different sides of the line, one warning
line names them (in report.md, summary.json's notes and on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from eval.phase import PHASE_FILE, detect_phase, read_metrics

PROBE_LENGTH = 128  # the probe length read when no training metrics are at hand


def training_run(path: Path) -> tuple[Path, int | None]:
    """(run dir, last step that counts) of a checkpoint: `run/final` -> (run, None), `run/snapshots/
    step_N` -> (run, N); any other dir is taken as its own run dir."""
    if path.name == "final":
        return path.parent, None
    if path.parent.name == "snapshots":
        digits = "".join(c for c in path.name if c.isdigit())
        return path.parent.parent, int(digits) if digits else None
    return path, None


def copying_status(name: str, path: Path, threshold: float, induction: pd.DataFrame | None = None) -> dict:
    """{model, acquired (bool or None: unknown), step (of the phase change), score, threshold, source}."""
    run, last = training_run(Path(path))
    if (run / "metrics.jsonl").is_file():
        records = [r for r in read_metrics(run) if last is None or r.get("step", 0) <= last]
        phase = detect_phase(records, threshold)
        if phase["final_step"] is not None:
            return _status(name, phase["step"] is not None, phase["step"], phase["final_score"], threshold,
                           f"val/induction in {run / 'metrics.jsonl'}")  # fmt: skip
    if last is None and (run / PHASE_FILE).is_file():
        phase = json.loads((run / PHASE_FILE).read_text())
        if phase.get("final_step") is not None:
            return _status(name, phase["step"] is not None, phase["step"], phase["final_score"],
                           phase["threshold"], str(run / PHASE_FILE))  # fmt: skip
    mine = induction[induction["model"] == name] if induction is not None and len(induction) else None
    if mine is not None and len(mine):
        row = mine.iloc[(mine["length"] - PROBE_LENGTH).abs().argmin()]
        return _status(name, bool(row["score"] >= threshold), None, float(row["score"]), threshold,
                       f"probe induction, L={int(row['length'])}")  # fmt: skip
    return _status(
        name, None, None, None, threshold, "none: no metrics.jsonl beside it; add probes=[induction]"
    )


def _status(name: str, acquired: bool | None, step, score, threshold: float, source: str) -> dict:
    return {"model": name, "acquired": acquired, "step": step, "score": score, "threshold": threshold,
            "source": source}  # fmt: skip


def describe(status: dict) -> str:
    """One sentence about one model."""
    name, score, threshold = status["model"], status["score"], status["threshold"]
    if status["acquired"] is None:
        return f"{name}: in-context copying unknown (source: {status['source']})."
    if not status["acquired"]:
        return (f"{name}: has not acquired in-context copying (induction {score:.2f} < {threshold:g} nat; "
                f"{status['source']}).")  # fmt: skip
    when = f" at step {status['step']}" if status["step"] is not None else ""
    return f"{name}: acquired in-context copying{when} (induction {score:.2f} nats now; {status['source']})."


def warning(statuses: list[dict]) -> str | None:
    """One line when some compared models copy in context and others do not; None otherwise."""
    lacking = [s for s in statuses if s["acquired"] is False]
    having = [s for s in statuses if s["acquired"]]
    if not lacking or not having:
        return None
    first = lacking[0]
    return (f"warning: {', '.join(s['model'] for s in lacking)} {'has' if len(lacking) == 1 else 'have'} not "
            f"acquired in-context copying (induction {first['score']:.2f} < {first['threshold']:g} nat) while "
            f"{', '.join(s['model'] for s in having)} {'has' if len(having) == 1 else 'have'}: gaps on copy "
            "filters compare a capability one model lacks.")  # fmt: skip


def copying_notes(
    names: list[str], paths: list[Path], threshold: float, induction=None
) -> tuple[list[dict], list[str]]:
    """(status per model, report lines: one sentence per model, then the warning if any, which also
    goes to stderr)."""
    statuses = [copying_status(n, Path(p), threshold, induction) for n, p in zip(names, paths)]
    alert = warning(statuses)
    if alert:
        print(alert, file=sys.stderr)
    return statuses, [describe(s) for s in statuses] + ([alert] if alert else [])
