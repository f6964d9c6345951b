"""`python -m eval ... probes=[...]`: probes alone, probes next to filtered losses, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from eval_helpers import corpus_files

from eval.probes import SCORED

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
PROBE_OUTPUTS = ["probes.parquet", "report.md", "summary.json", "plots"]


def probe_args(filler: Path, names=SCORED) -> list[str]:
    args = [f"probes=[{','.join(names)}]"]
    for name in names:
        args += [
            f"probes.{name}.n_examples=5",
            f"probes.{name}.distances=[16,48]",
            f"probes.{name}.filler={filler}",
        ]
    return args


def run(tmp_path: Path, models: list[Path], *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "run"
    args = [sys.executable, "-m", "eval", f"models=[{','.join(map(str, models))}]", "report.n_boot=100",
            f"cache_dir={tmp_path / 'cache'}", "progress=false", f"hydra.run.dir={out}", *extra]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT), out


@pytest.fixture
def filler(tmp_path) -> Path:
    import pydoc_data.topics

    path = tmp_path / "filler.txt"
    path.write_text("\n".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)[:40]))
    return path


def test_probes_alone_write_parquet_summary_report_and_plots(tmp_path, tiny_models, filler) -> None:
    models = [tiny_models["transformer"], tiny_models["hybrid"]]
    proc, out = run(tmp_path, models, *probe_args(filler))
    assert proc.returncode == 0, proc.stderr
    assert all((out / name).exists() for name in PROBE_OUTPUTS) and not (out / "tokens.parquet").exists()
    rows = pd.read_parquet(out / "probes.parquet")
    assert {"model", "probe", "setting", "difficulty", "correct", "margin", "target_loss"} <= set(
        rows.columns
    )
    assert len(rows) == 2 * 4 * 2 * 5 and set(rows["model"]) == {"transformer", "hybrid"}
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["probes"]) == 2 * 4 * 2
    assert {"model", "probe", "setting", "difficulty", "accuracy", "margin", "n"} <= set(summary["probes"][0])
    first = rows[(rows["model"] == "transformer") & (rows["probe"] == "pronoun") & (rows["difficulty"] == 16)]
    record = next(
        r
        for r in summary["probes"]
        if (r["model"], r["probe"], r["difficulty"]) == ("transformer", "pronoun", 16)
    )
    assert record["accuracy"] == pytest.approx(first["correct"].mean()) and record["n"] == 5
    report = (out / "report.md").read_text()
    assert "## Probes" in report and "### closure" in report and "Δacc transformer − hybrid" in report
    assert {p.name for p in (out / "plots").glob("*.png")} == {f"probe_{name}.png" for name in SCORED}


def test_probes_next_to_filtered_losses(tmp_path, tiny_models, filler) -> None:
    models = [tiny_models["transformer"], tiny_models["hybrid"]]
    proc, out = run(
        tmp_path, models, *corpus_files(tmp_path), "score.window=64", *probe_args(filler, ["copy"])
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "tokens.parquet").is_file() and (out / "probes.parquet").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gaps"] and {r["probe"] for r in summary["probes"]} == {"copy"}
    report = (out / "report.md").read_text()
    assert report.index("## Paired gaps") < report.index("## Probes") < report.index("## Figures")
    assert (out / "plots" / "probe_copy.png").is_file() and (
        out / "plots" / "gaps_transformer_vs_hybrid.png"
    ).is_file()


@pytest.mark.parametrize("case", ["nothing", "bad_setting", "bad_filler"])
def test_bad_probe_input_one_line_nonzero_nothing_written(tmp_path, tiny_models, filler, case: str) -> None:
    models = [tiny_models["transformer"], tiny_models["hybrid"]]
    extra = {"nothing": [], "bad_setting": [*probe_args(filler, ["pronoun"]), "probes.pronoun.n_examples=zero"],
             "bad_filler": ["probes=[entity]", "probes.entity.filler=no_such_source"]}[case]  # fmt: skip
    proc, out = run(tmp_path, models, *extra)
    expected = {
        "nothing": "nothing to evaluate",
        "bad_setting": "probe 'pronoun'",
        "bad_filler": "no_such_source",
    }[case]
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not any((out / name).exists() for name in PROBE_OUTPUTS)
