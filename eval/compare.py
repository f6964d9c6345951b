"""Filtered losses, paired gaps with document-bootstrap CIs, per-category tables and the gap regression.

Conventions: `loss_<model>` columns hold per-token losses in nats; the gap of a pair (a, b) is
`loss_a - loss_b` on the same token and prefix, so with models=[transformer, hybrid] a positive gap
means the hybrid predicts better (the study's sign). A filter's mean is over its tokens (a
token-weighted mean); its 95% CI comes from resampling documents with replacement (a cluster
bootstrap: tokens of one document are not independent), done for all filters at once as one
matrix product of multinomial document counts with per-document sums. A per-domain CI resamples
that domain's documents only; replicates that draw no token of a (rare) filter are counted in
`dropped`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

CI_LEVEL = 0.95


def loss_column(model: str) -> str:
    return f"loss_{model}"


def filter_losses(table: pd.DataFrame, masks: dict[str, np.ndarray], models: list[str]) -> pd.DataFrame:
    """Mean loss and token / document counts per filter and model."""
    rows = []
    docs = table["doc_id"].to_numpy()
    for name, mask in masks.items():
        for model in models:
            values = table[loss_column(model)].to_numpy()[mask]
            rows.append({
                "filter": name,
                "model": model,
                "mean_loss": float(values.mean()) if len(values) else np.nan,
                "tokens": int(mask.sum()),
                "documents": len(np.unique(docs[mask])),
            })  # fmt: skip
    return pd.DataFrame(rows)


@dataclass
class BootstrapCI:
    """Per filter: token-weighted mean, percentile CI, and the replicates left out of the CI."""

    mean: np.ndarray  # [F]
    low: np.ndarray  # [F]
    high: np.ndarray  # [F]
    dropped: np.ndarray  # [F] replicates that drew no token of the filter (no mean; not in the CI)


def bootstrap_ci(
    values: np.ndarray, masks: np.ndarray, clusters: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> BootstrapCI:
    """Per filter: mean of `values` over its tokens and a 95% CI from resampling clusters.

    values [N], masks [F, N] bool, clusters [N] ints. A replicate that draws only clusters without a
    token of a filter has no mean for it: it is dropped from that filter's percentiles and counted,
    since many dropped replicates mean the filter lives in too few clusters for a trustworthy CI.
    """
    _, cluster = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    masks = np.atleast_2d(masks)
    sums = np.stack(
        [np.bincount(cluster, weights=np.where(m, values, 0.0), minlength=n_clusters) for m in masks], 1
    )
    counts = np.stack([np.bincount(cluster, weights=m.astype(float), minlength=n_clusters) for m in masks], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.sum(0) / counts.sum(0)  # [F]
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(float)
        boot = (draws @ sums) / (draws @ counts)  # [B, F]
    alpha = (1 - CI_LEVEL) / 2
    empty = np.isnan(boot).all(0) if n_boot else np.ones(len(masks), dtype=bool)
    low, high = np.full(len(masks), np.nan), np.full(len(masks), np.nan)
    if (~empty).any():
        low[~empty], high[~empty] = np.nanquantile(boot[:, ~empty], [alpha, 1 - alpha], axis=0)
    dropped = np.isnan(boot).sum(0) if n_boot else np.zeros(len(masks), dtype=int)
    return BootstrapCI(mean, low, high, dropped.astype(int))


def bootstrap_means(
    values: np.ndarray, masks: np.ndarray, clusters: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) of `bootstrap_ci`, for callers that need no count of dropped replicates."""
    ci = bootstrap_ci(values, masks, clusters, n_boot, seed)
    return ci.mean, ci.low, ci.high


def pairs(models: list[str]) -> list[tuple[str, str]]:
    """Every ordered pair (a, b) with a listed before b."""
    return list(itertools.combinations(models, 2))


def paired_gaps(
    table: pd.DataFrame,
    masks: dict[str, np.ndarray],
    models: list[str],
    n_boot: int = 1000,
    seed: int = 0,
    by: str | None = None,
) -> pd.DataFrame:
    """Mean gap, 95% CI and counts for every pair x filter (x value of column `by`, if given).

    With `by`, each group's CI resamples only that group's documents (a domain's CI is not diluted by
    replicates that drew none of its documents); `dropped` counts replicates with no token of the
    filter (see `bootstrap_ci`).
    """
    groups = [(None, np.ones(len(table), dtype=bool))]
    if by is not None:
        groups = [(v, (table[by] == v).to_numpy(bool)) for v in _present(table[by])]
    docs = table["doc_id"].to_numpy()
    names = list(masks)
    stacked = np.stack([masks[n] for n in names]) if names else np.zeros((0, len(table)), dtype=bool)
    rows = []
    for a, b in pairs(models):
        gap = table[loss_column(a)].to_numpy(np.float64) - table[loss_column(b)].to_numpy(np.float64)
        for value, group_mask in groups:
            selected, group_docs = stacked[:, group_mask], docs[group_mask]
            ci = bootstrap_ci(gap[group_mask], selected, group_docs, n_boot, seed)
            for f, name in enumerate(names):
                row = {"model_a": a, "model_b": b, "filter": name}
                if by is not None:
                    row[by] = value
                row |= {
                    "gap": float(ci.mean[f]),
                    "ci_low": float(ci.low[f]),
                    "ci_high": float(ci.high[f]),
                    "tokens": int(selected[f].sum()),
                    "documents": len(np.unique(group_docs[selected[f]])),
                    "dropped": int(ci.dropped[f]),
                }
                rows.append(row)
    return pd.DataFrame(rows)


def category_gaps(
    table: pd.DataFrame, column: str, a: str, b: str, n_boot: int = 1000, seed: int = 0, min_tokens: int = 1
) -> pd.DataFrame:
    """Gap of pair (a, b) per value of `column` (e.g. `upos`, `tag`, `repeat_n`) with CIs, largest first."""
    values = [v for v in _present(table[column])]
    masks = np.stack([(table[column] == v).to_numpy(bool) for v in values])
    gap = table[loss_column(a)].to_numpy(np.float64) - table[loss_column(b)].to_numpy(np.float64)
    ci = bootstrap_ci(gap, masks, table["doc_id"].to_numpy(), n_boot, seed)
    out = pd.DataFrame({column: values, "gap": ci.mean, "ci_low": ci.low, "ci_high": ci.high,
                        "tokens": masks.sum(1), "dropped": ci.dropped})  # fmt: skip
    return out[out["tokens"] >= min_tokens].reset_index(drop=True)


def regress_gap(table: pd.DataFrame, a: str, b: str, indicators: list[str]) -> pd.DataFrame:
    """OLS of the per-token gap on category indicators plus controls, SEs clustered by document.

    `indicators` name boolean columns of `table` (e.g. filter masks added as columns). Controls:
    log frequency, log(1 + window position), repeat_n, word-initial and domain fixed effects.
    Returns coefficient, SE, p-value and 95% CI per term.
    """
    import statsmodels.api as sm

    gap = table[loss_column(a)].to_numpy(np.float64) - table[loss_column(b)].to_numpy(np.float64)
    pos_col = "window_pos" if "window_pos" in table else "position"
    design = pd.DataFrame({name: table[name].to_numpy(float) for name in indicators})
    design["log_frequency"] = table["log_frequency"].to_numpy(float)
    design["log_position"] = np.log1p(table[pos_col].to_numpy(float))
    design["repeat_n"] = table["repeat_n"].to_numpy(float)
    design["word_initial"] = table["word_initial"].to_numpy(float)
    domains = pd.get_dummies(table["domain"].astype(str), prefix="domain", drop_first=True, dtype=float)
    design = pd.concat([design, domains.set_index(design.index)], axis=1)
    design = design.loc[:, design.std(ddof=0) > 0]  # a constant indicator is collinear with the intercept
    design.insert(0, "const", 1.0)
    fit = sm.OLS(gap, design).fit(cov_type="cluster", cov_kwds={"groups": table["doc_id"].to_numpy()})
    ci = fit.conf_int(alpha=1 - CI_LEVEL)
    return pd.DataFrame({
        "term": design.columns,
        "coef": fit.params.to_numpy(),
        "se": fit.bse.to_numpy(),
        "p_value": fit.pvalues.to_numpy(),
        "ci_low": ci.iloc[:, 0].to_numpy(),
        "ci_high": ci.iloc[:, 1].to_numpy(),
    })  # fmt: skip


def _present(column: pd.Series) -> list:
    """Values that occur, in category order for categoricals, sorted otherwise."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        counts = column.value_counts(sort=False)
        return [v for v in column.cat.categories if counts.get(v, 0) > 0]
    return sorted(column.unique().tolist())
