"""The check's report: `report.json` and `summary.md` in `--out`, both rewritten after every step.

Each file is written to a temporary name and renamed over the old one, so a run cut short (a time
limit, a lost machine) leaves the results of every finished step and never a half-written file.
Format of `summary.md` (docs/benchmarks.md, "GPU"): a header line with the device, torch, CUDA and
fla versions and the command; one table of the steps (status, seconds used of the limit, headline);
then, per step, its rows as a table under `### <step>`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    """A markdown table of dicts; the columns are the union of their keys, in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


class Report:
    """The results so far; `add` records one step's result and rewrites both files."""

    def __init__(self, out: Path, header: dict[str, Any]) -> None:
        self.out, self.header, self.steps = out, header, []
        out.mkdir(parents=True, exist_ok=True)

    def add(self, result: dict[str, Any]) -> None:
        self.steps.append(result)
        _write_atomically(
            self.out / "report.json", json.dumps({**self.header, "steps": self.steps}, indent=1)
        )
        _write_atomically(self.out / "summary.md", self.markdown())

    def markdown(self) -> str:
        h = self.header
        peak = "unknown (no MFU)" if h["peak_tflops"] is None else f"{h['peak_tflops']:.0f} TFLOP/s"
        lines = [
            "# hybridzoo device check",
            "",
            f"{h['device']}; torch {h['torch']}, CUDA {h['cuda']}, fla-core {h['fla']}; "
            f"bf16 peak {peak}; `{h['command']}` ({h['started']})",
            "",
        ]
        summary = [
            {"step": s["name"], "status": s["status"], "seconds": f"{s['seconds']:.0f} / {s['limit_s']}",
             "headline": s.get("headline", "")}
            for s in self.steps
        ]  # fmt: skip
        lines += markdown_table(summary)
        for s in self.steps:
            if s.get("rows"):
                lines += ["", f"### {s['name']}", "", *markdown_table(s["rows"])]
        return "\n".join(lines) + "\n"
