"""`python -m eval`'s work, in order: check inputs, build the scoring table (eval.table), score, compare, report.

Everything a user can get wrong (missing model dirs, tokenizers that differ, an unknown filter, an
empty corpus, an unreadable reference parquet) is checked before the first model is scored, and
raises `UserError` with one sentence; the entry point prints it and exits 1.
"""

from __future__ import annotations

import glob
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from eval import compare
from eval.annotate import load_tokenizer, tokenizer_hash
from eval.config import EvalConfig
from eval.context import (
    ModelContext,
    check_vocab,
    model_context,
    past_trained_notes,
    scoring_device,
    scoring_dtype,
    scoring_summary,
)
from eval.copying import copying_notes
from eval.corpus import scoring_corpus, token_counts
from eval.curves import gap_curves, snapshot_induction
from eval.filters import Filters, favoured_tags
from eval.probes import run as probes_run
from eval.report import Results, write_report
from eval.score import cached_losses, load_model
from eval.table import prefix_token_id, scoring_table
from models.errors import UserError


def run_eval(cfg: EvalConfig, out_dir: Path) -> list[Path]:
    """Run the whole comparison and write the report into `out_dir`; returns the written paths."""
    started = time.perf_counter()
    names = _model_names(cfg)
    paths = [Path(p) for p in cfg.models]
    device = scoring_device(cfg.score.device)
    contexts = _contexts(paths)
    dtypes = [scoring_dtype(cfg.score.dtype, device, c.training) for c in contexts]
    if cfg.corpus is None:  # probes only (eval.probes.run)
        return probes_run.run_probes_only(
            cfg, names, out_dir, lambda paths: _shared_tokenizer(cfg, paths), device, dtypes
        )
    probe_plan = probes_run.plan(cfg.probes)  # a bad probe setting fails before any scoring
    checkpoints = _checkpoints(cfg.curves)
    checkpoint_paths = [p for runs in checkpoints.values() for _, p in runs]
    checkpoint_contexts = _contexts(checkpoint_paths)
    tokenizer = _shared_tokenizer(cfg, [*paths, *checkpoint_paths])
    for context in [*contexts, *checkpoint_contexts]:
        check_vocab(context, tokenizer)
    pair = _html_pair(cfg.report.html_pair, names)
    prefix_id = prefix_token_id(tokenizer, cfg.score.prefix_token)
    reference = _read_reference(cfg.filters.favoured.reference) if cfg.filters.favoured.enabled else None
    probes_run.prepare(probe_plan, tokenizer)
    scored = scoring_corpus(
        cfg.corpus, cfg.score.window, cfg.score.stride, [c.training for c in contexts], names
    )
    corpus, window, stride = scored.corpus, scored.window, scored.stride
    counts = token_counts(cfg.annotate.frequencies) if cfg.annotate.frequencies else None
    a = cfg.annotate
    table, windows = scoring_table(
        corpus.texts, tokenizer, corpus.domains, window, stride, prefix_id,
        spacy_model=a.spacy_model, n_process=a.n_process, batch_size=a.batch_size, chunk_chars=a.chunk_chars,
        counts=counts, cache_dir=Path(cfg.cache_dir) / "annotations" if cfg.cache_dir else None,
    )  # fmt: skip

    filters = Filters(dict(cfg.filters.queries), dict(cfg.filters.functions))
    fav = cfg.filters.favoured
    if fav.enabled:
        filters.add(fav.name, lambda t: np.zeros(len(t), dtype=bool))  # placeholder until tags are known
    wanted = list(dict.fromkeys([*cfg.filters.use, *cfg.report.regression]))
    for expression in wanted:  # fail on an unknown name before any scoring
        filters.mask(expression, table)

    scoring = scoring_summary(names, contexts, dtypes, windows)
    notes = [f"windows of {window} tokens every {windows.stride}, each document preceded by "
             f"{cfg.score.prefix_token!r}; repeat_n counts repeats in what the target saw, positions "
             "[context_start, position] (repeat_n_doc: the whole document).", *scored.notes,
             *past_trained_notes(scoring, window)]  # fmt: skip
    for note in notes[1:]:
        print(f"note: {note}")
    for row in scoring.itertuples():
        past = "unknown" if pd.isna(row.past_trained) else f"{row.past_trained:.1%}"
        print(f"scoring {row.model}: windows of {row.window} every {row.stride} in {row.dtype}; "
              f"targets past its training seq_len: {past}")  # fmt: skip
    cache = Path(cfg.cache_dir) / "losses" if cfg.cache_dir else None
    token_id = table["token_id"].to_numpy()
    for name, path, dtype in zip(names, paths, dtypes):
        model = load_model(path, device, dtype, name)
        table[compare.loss_column(name)] = cached_losses(
            model, windows, token_id, cfg.score.batch_size, device, dtype, cache, cfg.progress
        )
        del model
    probe_results = (
        probes_run.run_probes(
            probe_plan, names, paths, tokenizer, device, dtypes, cfg.report.n_boot, cfg.report.seed
        )
        if probe_plan
        else None
    )

    copying, copying_lines = copying_notes(
        names, paths, cfg.report.induction_threshold, probe_results.induction if probe_results else None
    )
    notes += copying_lines
    for line in copying_lines:
        print(line if line.startswith("warning:") else f"note: {line}")
    tags: list[str] = []
    if fav.enabled and (reference is not None or len(names) > 1):
        if reference is not None:
            ref_table, ref_gap, source = reference
        else:
            ref_table, source = table, "this run (in-sample: selection and measurement share tokens)"
            ref_gap = table[compare.loss_column(names[0])] - table[compare.loss_column(names[1])]
        tags = favoured_tags(ref_table, np.asarray(ref_gap), fav.k, fav.min_count)
        filters.add_tag_set(fav.name, tags)
        notes.append(
            f"{fav.name}: content tokens tagged {', '.join(tags) or '(none)'} ∩ NO-COPY, chosen on {source}."
        )
    elif fav.enabled:
        notes.append(f"{fav.name}: no tags (one model and no filters.favoured.reference to rank them on).")

    masks = {expression: filters.mask(expression, table) for expression in cfg.filters.use}
    rep = cfg.report
    curves, induction_curves, gap_curves_frame = _curves(
        checkpoints, table, windows, masks, cfg, device, cache, tokenizer, prefix_id
    )
    results = Results(
        models=names,
        table=table,
        texts=corpus.texts,
        losses=compare.filter_losses(table, masks, names),
        gaps=_gaps(table, masks, names, rep.n_boot, rep.seed),
        upos_gaps=_per_pair(compare.category_gaps, table, names, "upos", rep, min_tokens=1),
        tag_gaps=_per_pair(compare.category_gaps, table, names, "tag", rep, min_tokens=rep.tag_min_tokens),
        repeat_gaps=_per_pair(compare.category_gaps, table, names, "repeat_n", rep, min_tokens=1),
        regression=_regressions(table, names, filters, rep.regression),
        curves=curves,
        induction_curves=induction_curves,
        gap_curves=gap_curves_frame,
        favoured_tags=tags,
        notes=notes,
        settings=OmegaConf.to_container(OmegaConf.structured(cfg))
        | {"seconds": round(time.perf_counter() - started, 1)},
        probes=probe_results,
        scoring=scoring,
        copying=copying,
    )
    return write_report(out_dir, results, pair, rep.html_max_tokens)


def _contexts(paths: list[Path]) -> list[ModelContext]:
    """Each model's vocabulary and training context; UserError for a missing or unreadable model dir."""
    for path in paths:
        if not path.is_dir():
            raise UserError(f"model directory {str(path)!r} does not exist; check the models= list.")
    return [model_context(path) for path in paths]


def _html_pair(setting: list[str], names: list[str]) -> tuple[str, str]:
    """The two models tokens.html compares (default: the first two; one model: itself twice)."""
    pair = tuple(setting) if setting else (names[0], names[1 % len(names)])
    if len(pair) != 2 or not set(pair) <= set(names):
        raise UserError(f"report.html_pair {list(pair)} must name two of the models {names}.")
    return pair


def _default_name(path: Path) -> str:
    """A model's name from its directory; a training run's `final/` is named after its run."""
    return path.parent.name if path.name == "final" and path.parent.name else path.name


def _model_names(cfg: EvalConfig) -> list[str]:
    if not cfg.models:
        raise UserError("models= is empty; pass at least one model directory, e.g. models=[path/a,path/b].")
    names = list(cfg.names) if cfg.names else [_default_name(Path(p)) for p in cfg.models]
    if len(names) != len(cfg.models) or len(set(names)) != len(names):
        raise UserError(f"model names {names} must be unique, one per model; set names=[...].")
    for name in names:
        if not re.fullmatch(r"[\w.-]+", name):
            raise UserError(
                f"model name {name!r} may hold only letters, digits, '_', '.', '-'; set names=[...]."
            )
    return names


def _shared_tokenizer(cfg: EvalConfig, paths: list[Path]):
    """The one tokenizer every model uses (`paths` checked by `_contexts`); another tokenizer.json is an error."""
    files = [p / "tokenizer.json" for p in paths if (p / "tokenizer.json").is_file()]
    if cfg.tokenizer is None and not files:
        raise UserError("no model directory holds a tokenizer.json; pass tokenizer=path/to/tokenizer.json.")
    tokenizer = load_tokenizer(cfg.tokenizer or files[0])
    reference = tokenizer_hash(tokenizer)
    for file in files:
        if tokenizer_hash(load_tokenizer(file)) != reference:
            raise UserError(
                f"tokenizer mismatch: {file} differs from {cfg.tokenizer or files[0]}; compare only models "
                "that share a tokenizer (their per-token losses would not align)."
            )
    return tokenizer


def _read_reference(path: str | None):
    """(table, gap, description) from an earlier run's tokens.parquet; None when no path is set."""
    if path is None:
        return None
    try:
        table = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for missing or damaged files
        raise UserError(
            f"cannot read the reference {path!r} ({type(e).__name__}); point filters.favoured.reference at a tokens.parquet."
        ) from None
    losses = [c for c in table.columns if c.startswith("loss_")]
    if len(losses) < 2 or "tag" not in table or "word_class" not in table or "repeat_n" not in table:
        raise UserError(
            f"reference {path!r} is not a tokens.parquet of `python -m eval` with two models; use one."
        )
    return table, table[losses[0]] - table[losses[1]], f"{path} ({losses[0][5:]} − {losses[1][5:]})"


def _gaps(table, masks, names, n_boot, seed) -> pd.DataFrame:
    if len(names) < 2:  # one model: no pair, no gap
        return pd.DataFrame(columns=["model_a", "model_b", "filter", "domain", "gap", "ci_low", "ci_high"])
    overall = compare.paired_gaps(table, masks, names, n_boot, seed)
    overall.insert(3, "domain", "all")
    per_domain = compare.paired_gaps(table, masks, names, n_boot, seed, by="domain")
    return pd.concat([overall, per_domain], ignore_index=True)


def _per_pair(fn, table, names, column, rep, min_tokens) -> pd.DataFrame:
    frames = [
        fn(table, column, a, b, rep.n_boot, rep.seed, min_tokens).assign(model_a=a, model_b=b)
        for a, b in compare.pairs(names)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _regressions(table, names, filters, indicators) -> pd.DataFrame:
    design = table.assign(**{f"is_{i}": filters.mask(expr, table) for i, expr in enumerate(indicators)})
    renamed = {f"is_{i}": expr for i, expr in enumerate(indicators)}
    frames = []
    for a, b in compare.pairs(names):
        fit = compare.regress_gap(design, a, b, list(renamed))
        fit["term"] = fit["term"].replace(renamed)
        frames.append(fit.assign(model_a=a, model_b=b))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _checkpoints(curves: dict[str, list[str]]) -> dict[str, list[tuple[int, Path]]]:
    """run name -> [(step, dir)] sorted by step; the step is the last number in the directory name."""
    runs = {}
    for run, patterns in curves.items():
        dirs = [Path(p) for pattern in patterns for p in sorted(glob.glob(pattern))] or [
            Path(p) for p in patterns
        ]
        points = []
        for d in dirs:
            numbers = re.findall(r"\d+", d.name)
            if not numbers:
                raise UserError(
                    f"checkpoint {str(d)!r} of run {run!r} has no step number in its name; name it step_N."
                )
            points.append((int(numbers[-1]), d))
        runs[run] = sorted(points)
    return runs


def _curves(checkpoints, table, windows, masks, cfg, device, cache, tokenizer, prefix_id):
    """(filtered loss, induction score, paired gaps per filter) per run and step; Nones without curves."""
    if not checkpoints:
        return None, None, None
    rows, induction, losses = [], [], {}
    token_id = table["token_id"].to_numpy()
    for run, points in checkpoints.items():
        for step, path in points:
            dtype = scoring_dtype(cfg.score.dtype, device, model_context(path).training)
            model = load_model(path, device, dtype, f"{run}@{step}")
            losses[(run, step)] = cached_losses(
                model, windows, token_id, cfg.score.batch_size, device, dtype, cache, cfg.progress
            )
            induction.append(
                {"run": run, "step": step, **snapshot_induction(model, tokenizer, prefix_id, device)}
            )
            for name, mask in masks.items():
                rows.append({"run": run, "step": step, "filter": name,
                             "mean_loss": float(losses[(run, step)][mask].mean()) if mask.any() else np.nan,
                             "tokens": int(mask.sum())})  # fmt: skip
    gaps = gap_curves(table, masks, losses, list(checkpoints), cfg.report.n_boot, cfg.report.seed)
    return pd.DataFrame(rows), pd.DataFrame(induction), gaps
