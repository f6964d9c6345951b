"""MQAR by Zoology's protocol: recall against model width, each architecture at its best lr.

`python -m eval.probes.mqar_sweep SWEEP_DIR [--out DIR] [--examples N]` reads every run of a sweep
(`python -m train -m experiment=probe_mqar sweep=mqar_zoology`: one directory per architecture x
width x lr, each with its Hydra config and `final/`), tests each model with the `mqar` probe, and
writes into `--out` (default SWEEP_DIR/report):

- `runs.csv`: accuracy per run x number of pairs P, with the run's architecture, width, lr, steps
  (those it trained: a run stopped by `trainer.stop_at_val_loss` has fewer than max_steps)
  and whether P was in its training range (`trained`; False = length generalisation);
- `report.md`: per architecture and width the accuracy at each P at its best lr (the lr with the
  highest mean accuracy over the P it was trained on, Zoology's choice), then every run, then the
  runs that were found without a `final/` (unfinished);
- `plots/mqar_width.png`: accuracy against width, one panel per P, one line per architecture
  (Zoology's Figure 2); panels beyond the training range are titled as length generalisation.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
from omegaconf import OmegaConf

from eval.probes.mqar import Settings, evaluate
from eval.report import write_staged
from eval.score import load_model
from models.errors import UserError, exit_on_user_error
from models.pretrained import load_pretrained_config

RUN_COLUMNS = ["architecture", "d_model", "lr", "steps", "run"]


@dataclasses.dataclass
class SweepRun:
    """One run of the sweep: where it is and the knobs that place it in the grid."""

    path: Path
    architecture: str
    d_model: int
    lr: float
    steps: int
    finished: bool  # has final/


def find_runs(sweep_dir: Path) -> list[SweepRun]:
    """Every directory under `sweep_dir` holding an MQAR run's Hydra config (`.hydra/config.yaml`)."""
    if not sweep_dir.is_dir():
        raise UserError(
            f"sweep directory {str(sweep_dir)!r} does not exist; pass the sweep's hydra.sweep.dir."
        )
    runs = []
    for config_file in sorted(sweep_dir.glob("*/.hydra/config.yaml")):
        cfg = OmegaConf.load(config_file)
        if OmegaConf.select(cfg, "data.synthetic.task") != "mqar":
            continue
        run_dir = config_file.parent.parent
        finished = (run_dir / "final").is_dir()
        steps = trained_steps(run_dir / "final") if finished else None
        runs.append(SweepRun(run_dir, str(cfg.model.name), int(cfg.model.d_model), float(cfg.optim.lr),
                             steps or int(cfg.trainer.max_steps), finished))  # fmt: skip
    if not runs:
        raise UserError(
            f"no MQAR runs (*/.hydra/config.yaml with data.synthetic.task=mqar) under {str(sweep_dir)!r}; "
            "train them with python -m train -m experiment=probe_mqar sweep=mqar_zoology."
        )
    return runs


def trained_steps(final: Path) -> int | None:
    """The steps `final/` was trained for (its config's `training.steps`; fewer than max_steps when
    `trainer.stop_at_val_loss` ended the run early), or None for an export without that record."""
    training = load_pretrained_config(final).training
    return None if training is None else training.steps


def score_runs(runs: list[SweepRun], settings: Settings, device: torch.device) -> pd.DataFrame:
    """Accuracy per finished run x P (`RUN_COLUMNS`, `pairs`, `trained`, `accuracy`, `n`)."""
    rows = []
    for run in runs:
        if not run.finished:
            continue
        model = load_model(run.path / "final", device, torch.float32, run.path.name)
        frame = evaluate(model, settings, device=device)
        for (pairs, trained), part in frame.groupby(["difficulty", "trained"], dropna=False):
            rows.append({"architecture": run.architecture, "d_model": run.d_model, "lr": run.lr,
                         "steps": run.steps, "run": run.path.name, "pairs": int(pairs), "trained": trained,
                         "accuracy": float(part["correct"].mean()), "n": len(part)})  # fmt: skip
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, "pairs", "trained", "accuracy", "n"])


def best_lr(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of each architecture x width at its best lr: highest mean accuracy over trained P
    (over every P when no run knows its training range); ties go to the smaller lr."""
    keys = ["architecture", "d_model", "lr"]
    trained = scores[scores["trained"].fillna(True).astype(bool)]
    mean = (
        trained.groupby(keys)["accuracy"]
        .mean()
        .reset_index()
        .sort_values(["architecture", "d_model", "accuracy", "lr"], ascending=[True, True, False, True])
    )
    best = mean.drop_duplicates(["architecture", "d_model"])[keys]
    return scores.merge(best, on=keys)


def beyond_training(trained: pd.Series) -> bool:
    """Whether every run tested at these rows was trained on fewer pairs (`trained` False, not unknown)."""
    return bool(trained.notna().all() and not trained.astype(bool).any())


def accuracy_table(scores: pd.DataFrame) -> str:
    """Markdown: one row per architecture x width (x lr), one accuracy column per P."""
    beyond = scores.groupby("pairs")["trained"].agg(beyond_training)
    columns = {p: f"P={p}" + (" (length gen.)" if beyond[p] else "") for p in beyond.index}
    table = scores.pivot_table(
        index=["architecture", "d_model", "lr", "steps"], columns="pairs", values="accuracy"
    )
    formats = ["", "g", "g", "g", *[".2f"] * len(columns)]  # lr as 0.001, accuracies to 2 decimals
    return table.rename(columns=columns).reset_index().to_markdown(index=False, floatfmt=formats)


def width_plot(best: pd.DataFrame, path: Path) -> Path:
    """Accuracy against d_model at each architecture's best lr: one panel per P, one line per architecture."""
    pairs = sorted(best["pairs"].unique().tolist())
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.4), sharey=True, squeeze=False)
    for ax, p in zip(axes[0], pairs):
        panel = best[best["pairs"] == p]
        for architecture, line in panel.groupby("architecture", sort=True):
            line = line.sort_values("d_model")
            ax.plot(line["d_model"], line["accuracy"], marker="o", label=str(architecture))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(best["d_model"].unique()), [str(w) for w in sorted(best["d_model"].unique())])
        ax.minorticks_off()
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("d_model")
        ax.set_title(f"{p} pairs" + (" (length gen.)" if beyond_training(panel["trained"]) else ""))
    axes[0][0].set_ylabel("MQAR accuracy (best lr)")
    axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(runs: list[SweepRun], scores: pd.DataFrame, settings: Settings) -> str:
    """report.md: the best-lr table, every run, and the runs not finished."""
    unfinished = [r.path.name for r in runs if not r.finished]
    lines = [
        "# MQAR sweep (Zoology's protocol)",
        "",
        f"Test: {settings.examples} sequences of {settings.seq_len} tokens per P (seed {settings.seed}); "
        "accuracy = share of queries answered right. A P beyond a run's training range of pairs is "
        "length generalisation, not state capacity.",
        "",
        "## Each architecture at its best lr per width",
        "",
        accuracy_table(best_lr(scores)) if len(scores) else "(no finished runs)",
        "",
        "![mqar_width](plots/mqar_width.png)" if len(scores) else "",
        "",
        "## Every run",
        "",
        accuracy_table(scores) if len(scores) else "(no finished runs)",
        "",
        f"Unfinished (no final/): {', '.join(unfinished) if unfinished else 'none'}.",
        "",
    ]
    return "\n".join(lines)


def write_sweep_report(
    sweep_dir: Path, out_dir: Path, settings: Settings, device: torch.device
) -> list[Path]:
    """runs.csv, report.md and plots/mqar_width.png in `out_dir` (written atomically)."""
    runs = find_runs(sweep_dir)
    scores = score_runs(runs, settings, device)

    def fill(stage: Path) -> None:
        (stage / "plots").mkdir()
        scores.to_csv(stage / "runs.csv", index=False)
        if len(scores):
            width_plot(best_lr(scores), stage / "plots" / "mqar_width.png")
        (stage / "report.md").write_text(report(runs, scores, settings))

    return write_staged(out_dir, ["runs.csv", "report.md", "plots"], fill)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the sweep's directory (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default SWEEP_DIR/report)")
    parser.add_argument("--examples", type=int, default=Settings.examples, help="test sequences per P")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        settings = Settings(examples=args.examples)
        out = args.out or args.sweep_dir / "report"
        written = write_sweep_report(args.sweep_dir, out, settings, torch.device("cpu"))
    print(f"report: {written[1]}")


if __name__ == "__main__":
    main()
