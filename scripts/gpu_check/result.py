"""What every step module ends with: its result as JSON at the path given by `--json`."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

StepResult = tuple[bool, str, list[dict[str, Any]]]  # passed, one-line headline, table rows


def step_main(check: Callable[[], StepResult], doc: str) -> None:
    """Parse `--json PATH`, run `check`, write `{"passed", "headline", "rows"}` there (temp + rename)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where the step's result goes")
    args = parser.parse_args()
    passed, headline, rows = check()
    print(headline)
    partial = args.json.with_name(args.json.name + ".partial")
    partial.write_text(json.dumps({"passed": passed, "headline": headline, "rows": rows}, indent=1))
    os.replace(partial, args.json)


def agreement(rows: list[dict[str, Any]], errors: tuple[str, ...], labels: tuple[str, ...]) -> StepResult:
    """A comparison step's result: passed when every row is `ok`; the headline names the worst error
    (as a multiple of its row's `tol`) and every row that is off."""
    bad = ["/".join(str(r[k]) for k in labels) for r in rows if not r["ok"]]
    worst = max(max(r[k] for k in errors) / r["tol"] for r in rows)
    headline = f"{len(rows) - len(bad)}/{len(rows)} agree; worst error {worst:.2f} x tol"
    return not bad, headline + (f"; off: {', '.join(bad)}" if bad else ""), rows
