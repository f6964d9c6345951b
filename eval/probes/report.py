"""The probes' part of a run dir: probes.parquet, plots/probe_<name>.png, summary records, `## Probes`.

Statistics per model x probe x setting: accuracy (share of examples with margin > 0) and mean
margin, each with a 95% percentile bootstrap CI (`eval.compare.bootstrap_means`). The resampled
unit is the test sequence (`sequence` column) where a probe scores several answers of one sequence
(MQAR's P queries share their context, so they are not independent), the example otherwise.
Paired differences between two models (a − b, earlier minus later in models=) are taken example by
example (same examples, same prefixes), so their CIs resample the same units of the per-example
differences: a paired bootstrap.
A trained probe that knows each model's training range (`mqar`) adds `trained` per row, and the
table a `regime` column: settings beyond training are length generalisation, reported as such.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from eval import plots
from eval.compare import bootstrap_means, pairs

KEYS = ["probe", "setting", "difficulty"]


def mean_ci(values: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """Mean of `values` and its 95% bootstrap CI, resampling whole clusters (rows sharing a label)."""
    mean, low, high = bootstrap_means(
        values.astype(np.float64), np.ones((1, len(values)), bool), clusters, n_boot, seed
    )
    return float(mean[0]), float(low[0]), float(high[0])


def _clusters(part: pd.DataFrame, sequence: str = "sequence") -> np.ndarray:
    """The bootstrap's units: each row's test sequence when the probe records one, else its example."""
    if sequence in part and part[sequence].notna().all():
        return part[sequence].to_numpy()
    return part["example"].to_numpy()


def probe_stats(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """model x probe x setting: accuracy, margin and their CIs, n (in the order the rows came)."""
    rows = []
    for (model, probe, setting, difficulty), part in frame.groupby(["model", *KEYS], sort=False):
        clusters = _clusters(part)
        acc = mean_ci(part["correct"].to_numpy(), clusters, n_boot, seed)
        margin = mean_ci(part["margin"].to_numpy(), clusters, n_boot, seed)
        rows.append({
            "model": model, "probe": probe, "setting": setting, "difficulty": difficulty,
            "accuracy": acc[0], "accuracy_low": acc[1], "accuracy_high": acc[2],
            "margin": margin[0], "margin_low": margin[1], "margin_high": margin[2], "n": len(part),
            "trained": _trained(part),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _trained(part: pd.DataFrame) -> bool | None:
    """Whether the model was trained on this setting (trained probes that know it: `mqar`), else None."""
    if "trained" not in part or part["trained"].isna().any():
        return None
    return bool(part["trained"].iloc[0])


def _regime(stats: pd.DataFrame, setting: str) -> str:
    """`trained` / `length generalisation` (beyond every model's training range) / per model when mixed."""
    flags = stats[stats["setting"] == setting].set_index("model")["trained"]
    if flags.isna().any():
        return ""
    if flags.all() or not flags.any():
        return "trained" if flags.all() else "length generalisation"
    return "; ".join(f"{m}: {'trained' if f else 'length generalisation'}" for m, f in flags.items())


def probe_differences(
    frame: pd.DataFrame, models: list[str], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """model pair (a, b) x probe x setting: mean of a − b over the examples both models have."""
    rows = []
    for a, b in pairs(models):
        joined = frame[frame["model"] == a].merge(
            frame[frame["model"] == b], on=[*KEYS, "example"], suffixes=("_a", "_b")
        )
        for (probe, setting, difficulty), part in joined.groupby(KEYS, sort=False):
            clusters = _clusters(part, "sequence_a")
            correct = part["correct_a"].to_numpy(float) - part["correct_b"].to_numpy(float)
            acc = mean_ci(correct, clusters, n_boot, seed)
            margin = mean_ci(
                part["margin_a"].to_numpy() - part["margin_b"].to_numpy(), clusters, n_boot, seed
            )
            rows.append({
                "model_a": a, "model_b": b, "probe": probe, "setting": setting, "difficulty": difficulty,
                "accuracy_diff": acc[0], "accuracy_diff_low": acc[1], "accuracy_diff_high": acc[2],
                "margin_diff": margin[0], "margin_diff_low": margin[1], "margin_diff_high": margin[2], "n": len(part),
            })  # fmt: skip
    return pd.DataFrame(rows)


def induction_stats(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """model x L: the induction score and the second-copy accuracy with 95% CIs over sequences, the
    two copies' mean losses and n; empty when the frame has no induction rows."""
    rows = []
    part = frame[frame["probe"] == "induction"] if len(frame) else frame
    for (model, length), group in part.groupby(["model", "difficulty"], sort=False):
        clusters = _clusters(group)
        score = mean_ci(group["margin"].to_numpy(), clusters, n_boot, seed)
        acc = mean_ci(group["second_acc"].to_numpy(), clusters, n_boot, seed)
        rows.append({
            "model": model, "length": int(length), "score": score[0], "score_low": score[1], "score_high": score[2],
            "second_acc": acc[0], "second_acc_low": acc[1], "second_acc_high": acc[2],
            "first_loss": float(group["first_loss"].mean()), "second_loss": float(group["second_loss"].mean()),
            "n": len(group),
        })  # fmt: skip
    return pd.DataFrame(rows)


def induction_table(stats: pd.DataFrame) -> str:
    """Markdown: one row per model and L with the score [CI], second-copy accuracy [CI] and both losses."""
    table = pd.DataFrame({
        "model": stats["model"], "L": stats["length"],
        "score (nats)": [f"{r.score:.2f} [{r.score_low:.2f}, {r.score_high:.2f}]" for r in stats.itertuples()],
        "2nd-copy acc": [f"{r.second_acc:.2f} [{r.second_acc_low:.2f}, {r.second_acc_high:.2f}]" for r in stats.itertuples()],
        "loss 1st copy": stats["first_loss"].round(3), "loss 2nd copy": stats["second_loss"].round(3), "n": stats["n"],
    })  # fmt: skip
    return table.to_markdown(index=False)


def _ci(row: pd.Series, column: str) -> str:
    return f"{row[column]:.3f} [{row[column + '_low']:.3f}, {row[column + '_high']:.3f}]"


def _probe_table(stats: pd.DataFrame, models: list[str]) -> str:
    table = stats[KEYS[1:]].drop_duplicates().reset_index(drop=True)
    for model in models:
        mine = stats[stats["model"] == model].set_index("setting")
        for column, label in (("accuracy", "acc"), ("margin", "margin")):
            table[f"{label} {model}"] = [
                _ci(mine.loc[s], column) if s in mine.index else "" for s in table["setting"]
            ]
    table["n"] = [int(stats[stats["setting"] == s]["n"].max()) for s in table["setting"]]
    if stats["trained"].notna().any():
        table["regime"] = [_regime(stats, s) for s in table["setting"]]
    return table.to_markdown(index=False)


def _difference_table(diffs: pd.DataFrame) -> str:
    table = diffs[KEYS[1:]].drop_duplicates().reset_index(drop=True)
    for (a, b), part in diffs.groupby(["model_a", "model_b"], sort=False):
        part = part.set_index("setting")
        for column, label in (("accuracy_diff", "Δacc"), ("margin_diff", "Δmargin")):
            table[f"{label} {a} − {b}"] = [
                _ci(part.loc[s], column) if s in part.index else "" for s in table["setting"]
            ]
    return table.to_markdown(index=False)


def probe_section(results, figures: list[Path]) -> str:
    """The `## Probes` section of report.md."""
    lines = [
        "## Probes",
        "",
        "Accuracy is the share of examples whose right answer outscores every distractor (margin > 0); the "
        "margin is log p(right) − max log p(distractor) in nats, summed over an answer's tokens. 95% CIs "
        "resample test sequences (all answers of one sequence together: MQAR's queries share their context), "
        "or examples where each has its own; the paired differences (a − b) compare both models on the same "
        "examples.",
        "",
        *[f"- {note}" for note in results.notes],
    ]
    for probe in dict.fromkeys(results.stats["probe"]) if len(results.stats) else []:
        lines += [
            "",
            f"### {probe}",
            "",
            _probe_table(results.stats[results.stats["probe"] == probe], results.models),
        ]
        if probe == "induction" and len(results.induction):
            lines += ["", "Induction score (loss on the first copy − loss on the second, nats; 95% CIs over "
                      "sequences) and top-1 accuracy on the second copy:", "", induction_table(results.induction)]  # fmt: skip
        diffs = results.differences
        if len(diffs) and (diffs["probe"] == probe).any():
            lines += ["", "Paired differences:", "", _difference_table(diffs[diffs["probe"] == probe])]
    lines += ["", *[f"![{p.stem}](plots/{p.name})" for p in figures], ""]
    return "\n".join(lines)


def probe_files(stage: Path, results) -> tuple[str, list[Path], dict]:
    """Write probes.parquet and plots/probe_<name>.png into `stage` (plots/ must exist); returns the
    report section, the figures and the summary.json entries."""
    results.frame.to_parquet(stage / "probes.parquet", index=False)
    figures = [
        plots.probe_accuracy(part, f"{probe}: accuracy against difficulty", stage / "plots" / f"probe_{probe}.png")
        for probe, part in results.stats.groupby("probe", sort=False)
    ] if len(results.stats) else []  # fmt: skip
    summary = {
        "probes": _records(results.stats),
        "probe_differences": _records(results.differences),
        "probe_notes": results.notes,
        "induction": _records(results.induction),
    }
    return probe_section(results, figures), figures, summary


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records")) if len(frame) else []


def write_probe_report(out_dir: Path, results, settings: dict) -> list[Path]:
    """A probes-only run dir: probes.parquet, summary.json, report.md, plots/ (written atomically)."""
    from eval.report import write_staged

    def fill(stage: Path) -> None:
        (stage / "plots").mkdir()
        section, _, summary = probe_files(stage, results)
        summary = {"models": results.models, "settings": settings, **summary, "copying": results.copying}
        (stage / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        title = f"# Probes\n\nModels: {', '.join(results.models)}.\n\n"
        (stage / "report.md").write_text(title + section)

    return write_staged(out_dir, ["probes.parquet", "report.md", "summary.json", "plots"], fill)
