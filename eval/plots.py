"""The report's figures (matplotlib, Agg backend, PNG): mean loss per filter, gaps with CIs, per-POS
gaps, gap vs repeat_n, filtered-loss curves over training steps, induction scores and paired gaps
against step, and probe accuracy against difficulty."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gap_bars(gaps: pd.DataFrame, label: str, title: str, path: Path) -> Path:
    """Horizontal bars of `gap` per row `label` with [ci_low, ci_high] error bars."""
    gaps = gaps.dropna(subset=["gap"])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(gaps) + 1.5))
    y = range(len(gaps))
    err = [(gaps["gap"] - gaps["ci_low"]).clip(lower=0), (gaps["ci_high"] - gaps["gap"]).clip(lower=0)]
    ax.barh(
        list(y),
        gaps["gap"],
        xerr=err,
        color=["tab:blue" if g > 0 else "tab:red" for g in gaps["gap"]],
        capsize=3,
    )
    ax.set_yticks(list(y), [str(v) for v in gaps[label]])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("mean gap (nats), 95% CI")
    ax.set_title(title)
    return _save(fig, path)


def loss_bars(losses: pd.DataFrame, path: Path) -> Path:
    """Mean loss per filter, one bar per model (the report's first figure; the only one for one model)."""
    table = losses.pivot_table(index="filter", columns="model", values="mean_loss", sort=False)
    fig, ax = plt.subplots(figsize=(7, 0.3 * table.size + 1.5))
    table.plot.barh(ax=ax)
    ax.invert_yaxis()
    ax.set_xlabel("mean loss (nats)")
    ax.set_ylabel("")
    ax.set_title("mean loss per filter")
    return _save(fig, path)


def gap_vs_repeat(gaps: pd.DataFrame, title: str, path: Path) -> Path:
    """Mean gap against repeat_n with its CI band."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(gaps["repeat_n"], gaps["gap"], marker="o")
    ax.fill_between(gaps["repeat_n"], gaps["ci_low"], gaps["ci_high"], alpha=0.25)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("repeat_n (longest repeated n-gram ending at the token, in its window)")
    ax.set_ylabel("mean gap (nats)")
    ax.set_title(title)
    return _save(fig, path)


def loss_curves(curves: pd.DataFrame, path: Path) -> Path:
    """Filtered loss against training step: one panel per filter, one line per run."""
    filters = list(dict.fromkeys(curves["filter"]))
    cols = min(3, len(filters))
    rows = -(-len(filters) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.5 * rows), squeeze=False)
    for ax, name in zip(axes.flat, filters):
        part = curves[curves["filter"] == name]
        for run, points in part.groupby("run", sort=False):
            points = points.sort_values("step")
            ax.plot(points["step"], points["mean_loss"], marker="o", label=str(run))
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats)")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(filters) :]:
        ax.set_visible(False)
    return _save(fig, path)


def probe_accuracy(stats: pd.DataFrame, title: str, path: Path) -> Path:
    """A probe's accuracy against difficulty with its 95% CI band, one line per model."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, points in stats.groupby("model", sort=False):
        points = points.sort_values("difficulty")
        ax.plot(points["difficulty"], points["accuracy"], marker="o", label=str(model))
        ax.fill_between(points["difficulty"], points["accuracy_low"], points["accuracy_high"], alpha=0.2)
    if stats["difficulty"].min() > 0 and stats["difficulty"].max() >= 8 * stats["difficulty"].min():
        ax.set_xscale("log", base=2)  # distances double: 32, 64, ..., 1024
        ax.minorticks_off()
    ticks = sorted(stats["difficulty"].unique().tolist())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("difficulty (filler tokens, pairs or test length)")
    ax.set_ylabel("accuracy, 95% CI")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _induction_panel(ax, induction: pd.DataFrame, threshold: float) -> None:
    for run, points in induction.groupby("run", sort=False):
        points = points.sort_values("step")
        ax.plot(points["step"], points["score"], marker="o", label=str(run))
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"{threshold:g} nat")
    ax.set_title("induction score (loss on copy 1 − copy 2)")
    ax.set_ylabel("nats")
    ax.legend(fontsize="small")


def training_curves(
    induction: pd.DataFrame, gaps: pd.DataFrame | None, threshold: float, directory: Path
) -> list[Path]:
    """`induction_curves.png` (the score per run against step, with the threshold), and with two or
    more runs `gap_curves.png`: the same panel on top of one panel per filter holding each pair's
    gap with its 95% CI band, all on a shared step axis, so crossovers line up with phase changes."""
    fig, ax = plt.subplots(figsize=(6, 4))
    _induction_panel(ax, induction, threshold)
    ax.set_xlabel("step")
    figures = [_save(fig, directory / "induction_curves.png")]
    if gaps is None or not len(gaps):
        return figures
    filters = list(dict.fromkeys(gaps["filter"]))
    fig, axes = plt.subplots(
        len(filters) + 1, 1, figsize=(7, 2.6 * (len(filters) + 1)), sharex=True, squeeze=False
    )
    _induction_panel(axes[0, 0], induction, threshold)
    for ax, name in zip(axes[1:, 0], filters):
        for (a, b), points in gaps[gaps["filter"] == name].groupby(["model_a", "model_b"], sort=False):
            points = points.sort_values("step")
            ax.plot(points["step"], points["gap"], marker="o", label=f"{a} − {b}")
            ax.fill_between(points["step"], points["ci_low"], points["ci_high"], alpha=0.2)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"gap on {name} (positive: the later run predicts better)")
        ax.set_ylabel("nats, 95% CI")
        ax.legend(fontsize="small")
    axes[-1, 0].set_xlabel("step")
    figures.append(_save(fig, directory / "gap_curves.png"))
    return figures
