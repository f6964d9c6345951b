"""Print the demo's compact comparison tables from an eval run's summary.json.

    python scripts/demo_table.py runs/demo/eval/summary.json     # filtered losses
    python scripts/demo_table.py runs/demo/probes/summary.json   # probes

Filtered losses, per filter: each model's mean loss, and the gap of every other model against the
first (the transformer), loss(first) - loss(other) with its 95% bootstrap CI over documents:
positive means the other model predicts those tokens better (the study's sign convention).
Beside the losses, each model's induction score and phase-change step, and which models copy in
context (`eval.copying`). Probes, per probe and difficulty: each model's accuracy and the paired
accuracy difference of every other model against the first, other - first, with its 95% CI over
examples (MQAR: test sequences). `*` marks CIs that exclude zero. Each run's header line per model:
window, stride, dtype and the share of scored targets past the model's training seq_len.
A difficulty beyond every model's training range (MQAR's pairs) is marked as length generalisation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FILTERS = [
    "all",
    "content",
    "function",
    "no_copy",
    "content & no_copy",
    "copy5",
    "open_bracket",
    "close_bracket",
]


def table(summary: dict) -> str:
    models = summary["models"]
    base, others = models[0], models[1:]
    losses = {(r["filter"], r["model"]): r for r in summary["losses"]}
    gaps = {
        (r["filter"], r["model_b"]): r
        for r in summary["gaps"]
        if r["model_a"] == base and r["domain"] == "all"
    }
    header = f"{'filter':<18} {'tokens':>7} " + " ".join(f"{m[:16]:>16}" for m in models)
    header += "".join(f"  {base[:12] + ' - ' + m[:12]:>31}" for m in others)
    lines = [
        *scoring_lines(summary),
        f"mean loss (nats) per model; gap = loss({base}) - loss(other), 95% CI over documents",
        header,
    ]
    for name in [f for f in FILTERS if (f, base) in losses]:
        row = f"{name:<18} {losses[(name, base)]['tokens']:>7} "
        row += " ".join(_number(losses[(name, m)]["mean_loss"]) for m in models)
        for m in others:
            g = gaps[(name, m)]
            star = "*" if g["ci_low"] > 0 or g["ci_high"] < 0 else " "
            row += f"  {g['gap']:>+9.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]{star}"
        lines.append(row)
    return "\n".join(lines)


def scoring_lines(summary: dict) -> list[str]:
    """Per model: window, stride, dtype and the share of targets past its training seq_len."""
    lines = []
    for row in summary.get("scoring", []):
        past = "unknown" if row["past_trained"] is None else f"{row['past_trained']:.1%}"
        lines.append(f"{row['model']}: windows of {row['window']} every {row['stride']}, {row['dtype']}, "
                     f"trained seq_len {row['trained_seq_len']}, targets past it {past}")  # fmt: skip
    return lines


def _number(value: float | None) -> str:
    return f"{'-':>16}" if value is None else f"{value:>16.3f}"


def probe_table(summary: dict) -> str:
    models = summary["models"]
    base, others = models[0], models[1:]
    acc = {(r["probe"], r["difficulty"], r["model"]): r for r in summary["probes"]}
    diff = {
        (r["probe"], r["difficulty"], r["model_b"]): r
        for r in summary["probe_differences"]
        if r["model_a"] == base
    }
    header = f"{'probe':<8} {'difficulty':>10} {'n':>4} " + " ".join(f"{m[:16]:>16}" for m in models)
    header += "".join(f"  {m[:12] + ' - ' + base[:12]:>31}" for m in others)
    title = "probe accuracy per model"
    if others:
        title += f"; difference = acc(other) - acc({base}), 95% CI over examples (MQAR: over test sequences)"
    lines = [title, header]
    for probe, difficulty in dict.fromkeys((r["probe"], r["difficulty"]) for r in summary["probes"]):
        row = f"{probe:<8} {difficulty:>10g} {acc[(probe, difficulty, base)]['n']:>4} "
        row += " ".join(
            f"{acc[(probe, difficulty, m)]['accuracy']:>16.3f}"
            if (probe, difficulty, m) in acc
            else f"{'-':>16}"
            for m in models
        )
        for m in others:
            g = diff.get((probe, difficulty, m))
            if g is None:
                row += f"  {'-':>31}"
                continue
            d, low, high = (
                0.0 - g[k] + 0.0 for k in ("accuracy_diff", "accuracy_diff_high", "accuracy_diff_low")
            )
            star = "*" if low > 0 or high < 0 else " "
            row += f"  {d:>+9.3f} [{low:+.3f}, {high:+.3f}]{star}"
        if all(
            acc[(probe, difficulty, m)].get("trained") is False
            for m in models
            if (probe, difficulty, m) in acc
        ):
            row += "  (beyond training: length generalisation)"
        lines.append(row)
    return "\n".join(lines)


def copying_table(summary: dict) -> str:
    """Each model's induction score and phase-change step (`eval.copying`), and a footer saying which
    models copy in context and where a comparison past the transformer's phase change is."""
    statuses = summary["copying"]
    threshold = statuses[0]["threshold"]
    lines = [f"in-context copying: induction score = loss on the first - second copy of a repeated random sequence "
             f"(nats); phase change = first evaluation >= {threshold:g} nat",
             f"{'model':<18} {'induction':>9}  phase change"]  # fmt: skip
    for s in statuses:
        score = f"{s['score']:>9.2f}" if s["score"] is not None else f"{'-':>9}"
        phase = {
            True: f"step {s['step']}" if s["step"] is not None else "yes",
            False: "not yet",
            None: "unknown",
        }
        lines.append(f"{s['model'][:18]:<18} {score}  {phase[s['acquired']]}")
    copying = [s["model"] for s in statuses if s["acquired"]]
    lacking = [s["model"] for s in statuses if s["acquired"] is False]
    lines.append(
        f"copies in context: {', '.join(copying) or 'none'}; not yet: {', '.join(lacking) or 'none'}."
    )
    if lacking:
        lines.append("Gaps on copy filters (copy5 and the other repeat_n filters) compare a capability some models lack here; "
                     "experiment=cpu_study is the longer CPU recipe that trains all three past the transformer's "
                     "phase change (docs/reproducing-olmo-hybrid.md, section 6).")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: python scripts/demo_table.py RUN_DIR/summary.json")
    summary = json.loads(Path(sys.argv[1]).read_text())
    if "losses" in summary:
        print(table(summary))
        if summary.get("copying"):  # beside the filtered losses only: the copy filters are what it qualifies
            print()
            print(copying_table(summary))
    if summary.get("probes"):
        print(probe_table(summary))


if __name__ == "__main__":
    main()
