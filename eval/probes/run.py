"""Run the configured probes over the models: one model loaded at a time, every probe on it.

`python -m eval models=[A,B] probes=[pronoun,copy]` selects `conf/probes/{pronoun,copy}.yaml`; each
lands under `cfg.probes.<name>` and fills that probe's `Settings` (an unknown or mistyped key is a
ValueError). `eval.pipeline` calls `run_probes_only` when no corpus is given, and `plan` +
`run_probes` next to the filtered losses when both are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eval.context import check_vocab, model_context
from eval.copying import copying_notes
from eval.probes import COLUMNS, SCORED, TOKENIZED, probe_module
from eval.probes.report import induction_stats, probe_differences, probe_stats, write_probe_report
from eval.probes.scored import build_examples
from eval.probes.trained import check_settings
from eval.score import load_model
from models.errors import UserError

Plan = dict[str, tuple[ModuleType, Any]]  # probe name: (module, its Settings)


@dataclass
class ProbeResults:
    """Every probe row of every model, with the per-condition statistics the report shows."""

    models: list[str]
    frame: pd.DataFrame  # one row per model x example: model + COLUMNS (+ a probe's extra columns)
    stats: pd.DataFrame  # model x probe x setting: accuracy, margin (95% CIs), n
    differences: pd.DataFrame  # model pair x probe x setting: paired differences (95% CIs), n
    notes: list[str] = field(default_factory=list)
    induction: pd.DataFrame = field(default_factory=pd.DataFrame)  # model x L (eval.probes.induction)
    copying: list[dict] = field(default_factory=list)  # per model, probes-only runs (eval.copying)


def plan(probes: dict[str, Any]) -> Plan:
    """Each selected probe's module and settings; ValueError for an unknown probe or setting."""
    out = {}
    for name, values in (probes or {}).items():
        module = probe_module(name)
        try:
            merged = OmegaConf.merge(OmegaConf.structured(module.Settings), values or {})
            out[name] = (module, OmegaConf.to_object(merged))
        except OmegaConfBaseException as e:
            reason = str(e).splitlines()[0]
            raise UserError(
                f"probe {name!r}: {reason}; see conf/probes/{name}.yaml for its settings."
            ) from None
        if name not in SCORED:
            check_settings(name, out[name][1])
    return out


def prepare(probes: Plan, tokenizer) -> None:
    """Build the scored probes' examples now, so a bad filler or tokenizer fails before any scoring."""
    for name, (module, settings) in probes.items():
        if name in SCORED:
            build_examples(name, module.generate, module.VOCABULARY, settings, tokenizer)


def run_probes(
    probes: Plan,
    names: list[str],
    paths: list[Path],
    tokenizer,
    device: torch.device,
    dtype: torch.dtype | Sequence[torch.dtype],
    n_boot: int = 1000,
    seed: int = 0,
) -> ProbeResults:
    """Every probe on every model (loaded once each, in `dtype`: one for all or one per model);
    statistics bootstrap examples `n_boot` times."""
    frames, notes = [], []
    dtypes = [dtype] * len(names) if isinstance(dtype, torch.dtype) else list(dtype)
    for name, path, dtype in zip(names, paths, dtypes):
        model = load_model(path, device, dtype, name)
        for probe, (module, settings) in probes.items():
            frame = module.evaluate(model, settings, tokenizer if probe in TOKENIZED else None, device, dtype)
            notes += frame.attrs.get("notes", [])
            frames.append(frame.assign(model=name))
        del model
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", *COLUMNS])
    frame = frame[["model", *[c for c in frame.columns if c != "model"]]]
    return ProbeResults(
        models=names,
        frame=frame,
        stats=probe_stats(frame, n_boot, seed),
        differences=probe_differences(frame, names, n_boot, seed),
        notes=notes,
        induction=induction_stats(frame, n_boot, seed),
    )


def run_probes_only(
    cfg,
    names: list[str],
    out_dir: Path,
    shared_tokenizer: Callable[[list[Path]], Any],
    device: torch.device,
    dtypes: Sequence[torch.dtype],
) -> list[Path]:
    """`python -m eval models=[...] probes=[...]` without a corpus: probes.parquet, summary.json,
    report.md and plots/probe_*.png in `out_dir`. `shared_tokenizer(paths)` gives the models' one
    tokenizer; it is only asked for when a scored probe runs (trained probes need none)."""
    started = time.perf_counter()
    probes = plan(cfg.probes)
    if not probes:
        raise UserError(
            "nothing to evaluate: pass corpus=NAME (filtered losses, e.g. corpus=demo), probes=[...] "
            "(e.g. probes=[pronoun,entity,closure,copy]) or both."
        )
    paths = [Path(p) for p in cfg.models]  # checked by eval.pipeline
    tokenizer = shared_tokenizer(paths) if set(probes) & set(TOKENIZED) else None
    if tokenizer is not None:
        for path in paths:
            check_vocab(model_context(path), tokenizer)
    prepare(probes, tokenizer)
    results = run_probes(probes, names, paths, tokenizer, device, dtypes, cfg.report.n_boot, cfg.report.seed)
    used = ", ".join(f"{name} {str(dtype).removeprefix('torch.')}" for name, dtype in zip(names, dtypes))
    results.copying, lines = copying_notes(names, paths, cfg.report.induction_threshold, results.induction)
    results.notes = [*lines, f"scored in (score.dtype={cfg.score.dtype}): {used}.", *results.notes]
    settings = OmegaConf.to_container(OmegaConf.structured(cfg)) | {
        "seconds": round(time.perf_counter() - started, 1)
    }
    return write_probe_report(out_dir, results, settings)
