"""The run directory's outputs: tokens.parquet, report.md, gaps.csv, summary.json, plots/*.png, tokens.html.

Everything is written into a hidden staging directory inside the run dir and moved into place only
when all of it is complete, so a failure never leaves a half-written report behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from eval import plots
from eval.html import tokens_html
from eval.phase import DEFAULT_THRESHOLD
from eval.probes.report import probe_files

OUTPUTS = ("tokens.parquet", "report.md", "gaps.csv", "summary.json", "plots", "tokens.html")


@dataclass
class Results:
    """Everything the comparison produced; `eval.pipeline` fills it, `write_report` writes it."""

    models: list[str]
    table: pd.DataFrame  # one row per scored token: categories, window columns, loss_<model>
    texts: list[str]
    losses: pd.DataFrame  # filter x model: mean_loss, tokens, documents
    gaps: pd.DataFrame  # pair x filter (x domain; "all" overall): gap, ci_low, ci_high, tokens
    upos_gaps: pd.DataFrame  # pair x upos
    tag_gaps: pd.DataFrame  # pair x fine tag
    repeat_gaps: pd.DataFrame  # pair x repeat_n
    regression: pd.DataFrame  # pair x term: coef, se, p_value, CI
    curves: pd.DataFrame | None = None  # run, step, filter, mean_loss, tokens
    induction_curves: pd.DataFrame | None = None  # run, step, score, second_acc (eval.curves)
    gap_curves: pd.DataFrame | None = None  # model_a, model_b, step, filter, gap, CI, tokens, documents
    favoured_tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    probes: Any = None  # eval.probes.run.ProbeResults when probes= ran too
    scoring: pd.DataFrame | None = None  # per model: dtype, training seq_len/precision, past_trained share
    copying: list[dict] = field(default_factory=list)  # per model: eval.copying.copying_status


def write_report(
    out_dir: Path, results: Results, html_pair: tuple[str, str], html_max_tokens: int
) -> list[Path]:
    """Write all outputs into `out_dir` atomically; returns their paths."""

    def fill(stage: Path) -> None:
        results.table.to_parquet(stage / "tokens.parquet", index=False)
        results.gaps.to_csv(stage / "gaps.csv", index=False)
        (stage / "plots").mkdir()
        figures = _plots(stage / "plots", results)
        summary, section = _summary(results), ""
        if results.probes is not None:
            section, _, probe_summary = probe_files(stage, results.probes)  # the section shows its figures
            summary |= probe_summary
        (stage / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (stage / "report.md").write_text(_markdown(results, figures, section))
        a, b = html_pair
        (stage / "tokens.html").write_text(tokens_html(results.table, results.texts, a, b, html_max_tokens))

    names = [*OUTPUTS, *(["probes.parquet"] if results.probes is not None else [])]
    return write_staged(out_dir, names, fill)


def write_staged(out_dir: Path, names: list[str], fill: Callable[[Path], None]) -> list[Path]:
    """Let `fill` write `names` into a hidden staging dir in `out_dir`, then move each into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
    try:
        fill(stage)
        written = []
        for name in names:
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            (stage / name).replace(target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _pair_rows(frame: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return frame[(frame["model_a"] == a) & (frame["model_b"] == b)]


def _pairs(results: Results) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(results.gaps["model_a"], results.gaps["model_b"])))


def _plots(directory: Path, results: Results) -> list[Path]:
    figures = [plots.loss_bars(results.losses, directory / "losses.png")]
    for a, b in _pairs(results):
        tag = f"{a}_vs_{b}"
        overall = _pair_rows(results.gaps, a, b)
        overall = overall[overall["domain"] == "all"]
        figures.append(
            plots.gap_bars(overall, "filter", f"gap {a} − {b} per filter", directory / f"gaps_{tag}.png")
        )
        upos = _pair_rows(results.upos_gaps, a, b)
        if len(upos):
            figures.append(
                plots.gap_bars(upos, "upos", f"gap {a} − {b} per POS", directory / f"pos_{tag}.png")
            )
        repeats = _pair_rows(results.repeat_gaps, a, b)
        if len(repeats):
            figures.append(
                plots.gap_vs_repeat(repeats, f"gap {a} − {b} vs repeat_n", directory / f"repeat_{tag}.png")
            )
    if results.curves is not None and len(results.curves):
        figures.append(plots.loss_curves(results.curves, directory / "curves.png"))
        figures += plots.training_curves(
            results.induction_curves,
            results.gap_curves,
            results.settings.get("report", {}).get("induction_threshold", DEFAULT_THRESHOLD),
            directory,
        )
    return figures


def _records(frame: pd.DataFrame | None) -> list[dict]:
    return [] if frame is None else json.loads(frame.to_json(orient="records"))


def _summary(results: Results) -> dict:
    table = results.table
    return {
        "models": results.models,
        "tokens": len(table),
        "documents": int(table["doc_id"].nunique()),
        "tokens_per_domain": {str(k): int(v) for k, v in table["domain"].value_counts(sort=False).items()},
        "settings": results.settings,
        "scoring": _records(results.scoring),
        "losses": _records(results.losses),
        "gaps": _records(results.gaps),
        "favoured_tags": results.favoured_tags,
        "regression": _records(results.regression),
        "curves": _records(results.curves),
        "induction_curves": _records(results.induction_curves),
        "gap_curves": _records(results.gap_curves),
        "notes": results.notes,
        "copying": results.copying,
    }


def _md(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4f") if len(frame) else "(none)"


def _markdown(results: Results, figures: list[Path], probes: str = "") -> str:
    table = results.table
    lines = [
        "# Filtered token losses",
        "",
        f"Models: {', '.join(results.models)}. {len(table)} tokens in {table['doc_id'].nunique()} documents "
        f"(domains: {', '.join(map(str, table['domain'].cat.categories))}). Losses in nats; the gap of a pair "
        "(a, b) is loss_a − loss_b on the same token, so a positive gap means b predicts better. 95% CIs "
        "resample documents (within the domain for per-domain rows).",
        "",
        *[f"- {note}" for note in results.notes],
        "",
        *_scoring_section(results.scoring),
        "## Mean loss per filter",
        "",
        _md(
            results.losses.pivot_table(
                index="filter", columns="model", values="mean_loss", sort=False
            ).reset_index()
        ),
        "",
    ]
    lines += (
        _gap_sections(results)
        if len(results.models) > 1
        else ["One model: no gaps (a gap compares two).", ""]
    )
    if results.favoured_tags:
        lines += [f"Most favoured open-class tags: {', '.join(results.favoured_tags)}.", ""]
    if results.curves is not None and len(results.curves):
        lines += ["## Filtered loss over training", "", _md(results.curves), ""]
        lines += [
            "## Induction score over training (nats; eval.curves)",
            "",
            _md(results.induction_curves),
            "",
        ]
        if results.gap_curves is not None and len(results.gap_curves):
            lines += [
                "## Paired gaps over training (95% CIs over documents)",
                "",
                _md(results.gap_curves),
                "",
            ]
    if probes:
        lines += [probes, ""]
    lines += [
        "## Figures",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in figures],
        "",
        "Token view: [tokens.html](tokens.html)",
        "",
    ]
    return "\n".join(lines)


def _scoring_section(scoring: pd.DataFrame | None) -> list[str]:
    """How each model was scored: dtype, training seq_len and precision, share of targets past it."""
    if scoring is None:
        return []
    return [
        "## Scoring",
        "",
        "past_trained: share of scored targets predicted at positions >= the model's training seq_len "
        "(never trained on; empty when the seq_len is unknown).",
        "",
        _md(scoring),
        "",
    ]


def _gap_sections(results: Results) -> list[str]:
    gaps = results.gaps
    frames = (gaps, results.upos_gaps, results.tag_gaps, results.repeat_gaps)
    dropped = sum(int((f["dropped"] > 0).sum()) for f in frames if "dropped" in f)
    lines = [
        "## Paired gaps",
        "",
        _md(gaps[gaps["domain"] == "all"].drop(columns="domain")),
        "",
        "## Gaps per domain",
        "",
        _md(gaps[gaps["domain"] != "all"]),
        "",
        "## Gaps per part of speech",
        "",
        _md(results.upos_gaps),
        "",
        "## Gaps per fine tag",
        "",
        _md(results.tag_gaps),
        "",
        "## Gap against repeat_n",
        "",
        _md(results.repeat_gaps),
        "",
        "## Regression of the gap (OLS, SEs clustered by document)",
        "",
        _md(results.regression),
        "",
    ]
    if dropped:
        lines += [
            f"Note: in {dropped} rows some bootstrap replicates drew no token of the row's filter or category "
            "(column `dropped`, out of report.n_boot); they are left out of its CI, and a row with many has "
            "too few documents for its CI to be trusted.",
            "",
        ]
    return lines
