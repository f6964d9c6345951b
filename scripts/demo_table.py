"""Print the demo's compact comparison table from an eval run's summary.json.

    python scripts/demo_table.py runs/demo/eval/summary.json

Per filter: each model's mean loss, and the gap of every other model against the first (the
transformer), loss(first) - loss(other) with its 95% bootstrap CI over documents: positive means
the other model predicts those tokens better (the study's sign convention). `*` marks CIs that
exclude zero.
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
    lines = [f"mean loss (nats) per model; gap = loss({base}) - loss(other), 95% CI over documents", header]
    for name in [f for f in FILTERS if (f, base) in losses]:
        row = f"{name:<18} {losses[(name, base)]['tokens']:>7} "
        row += " ".join(f"{losses[(name, m)]['mean_loss']:>16.3f}" for m in models)
        for m in others:
            g = gaps[(name, m)]
            star = "*" if g["ci_low"] > 0 or g["ci_high"] < 0 else " "
            row += f"  {g['gap']:>+9.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]{star}"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: python scripts/demo_table.py RUN_DIR/summary.json")
    print(table(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
