"""Gap and CI arithmetic on synthetic losses with known answers; the regression recovers a planted effect."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval.compare import bootstrap_means, category_gaps, filter_losses, paired_gaps, regress_gap


def synthetic(n_docs: int = 40, per_doc: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_docs * per_doc
    content = rng.random(n) < 0.5
    table = pd.DataFrame({
        "doc_id": np.repeat(np.arange(n_docs), per_doc),
        "domain": pd.Categorical(np.where(np.repeat(np.arange(n_docs), per_doc) % 2, "code", "prose")),
        "word_class": pd.Categorical(np.where(content, "content", "function")),
        "upos": pd.Categorical(np.where(content, "NOUN", "DET")),
        "repeat_n": rng.integers(0, 4, n).astype(np.int8),
        "log_frequency": rng.normal(5, 1, n),
        "window_pos": rng.integers(0, 2048, n),
        "word_initial": rng.random(n) < 0.7,
    })  # fmt: skip
    table["loss_t"] = 3.0 + rng.normal(0, 0.1, n)
    # planted: the hybrid is 0.2 nats better on content tokens, 0.05 on function tokens, 0.03 per repeat_n
    table["loss_h"] = (
        table["loss_t"] - np.where(content, 0.2, 0.05) - 0.03 * table["repeat_n"] + rng.normal(0, 0.05, n)
    )
    table["is_content"] = content
    return table


def test_means_and_counts_are_exact() -> None:
    t = pd.DataFrame({"doc_id": [0, 0, 1, 1], "loss_a": [1.0, 2.0, 3.0, 4.0], "loss_b": [0.5, 2.0, 3.5, 3.0]})
    masks = {"all": np.ones(4, bool), "first": np.array([True, False, True, False])}
    losses = filter_losses(t, masks, ["a", "b"])
    assert losses.set_index(["filter", "model"]).loc[("first", "a"), "mean_loss"] == 2.0
    gaps = paired_gaps(t, masks, ["a", "b"], n_boot=200).set_index("filter")
    assert np.isclose(gaps.loc["all", "gap"], 0.25)  # (0.5 + 0 - 0.5 + 1) / 4
    assert np.isclose(gaps.loc["first", "gap"], 0.0)  # (0.5 - 0.5) / 2
    assert gaps.loc["all", "tokens"] == 4 and gaps.loc["all", "documents"] == 2


def test_bootstrap_ci_resamples_documents() -> None:
    # every document has the same mean: resampling documents cannot move the mean, so the CI is a point
    values = np.tile([1.0, 3.0], 10)
    mean, low, high = bootstrap_means(values, np.ones((1, 20), bool), np.repeat(np.arange(10), 2), n_boot=500)
    assert np.allclose([mean[0], low[0], high[0]], 2.0)
    # two documents with means 0 and 1, equal sizes: the bootstrap mean is Binomial(2, 1/2) / 2
    values, docs = np.r_[np.zeros(5), np.ones(5)], np.repeat([0, 1], 5)
    mean, low, high = bootstrap_means(values, np.ones((1, 10), bool), docs, n_boot=4000, seed=1)
    assert mean[0] == 0.5 and low[0] == 0.0 and high[0] == 1.0
    # seeded: the same answer twice
    again = bootstrap_means(values, np.ones((1, 10), bool), docs, n_boot=4000, seed=1)
    assert np.array_equal(np.r_[low, high], np.r_[again[1], again[2]])


def test_ci_covers_the_planted_gap_and_per_category_tables() -> None:
    t = synthetic()
    masks = {"content": t["is_content"].to_numpy(), "function": ~t["is_content"].to_numpy()}
    gaps = paired_gaps(t, masks, ["t", "h"], n_boot=500).set_index("filter")
    expected_content = 0.2 + 0.03 * t.loc[t.is_content, "repeat_n"].mean()
    assert gaps.loc["content", "ci_low"] < expected_content < gaps.loc["content", "ci_high"]
    assert gaps.loc["content", "ci_high"] - gaps.loc["content", "ci_low"] < 0.02
    per_domain = paired_gaps(t, masks, ["t", "h"], n_boot=100, by="domain")
    assert set(per_domain["domain"]) == {"code", "prose"} and len(per_domain) == 4
    by_repeat = category_gaps(t, "repeat_n", "t", "h", n_boot=100)
    assert np.allclose(np.diff(by_repeat["gap"]), 0.03, atol=0.01)


def test_regression_recovers_planted_effect() -> None:
    t = synthetic(n_docs=60)
    fit = regress_gap(t, "t", "h", ["is_content"]).set_index("term")
    assert abs(fit.loc["is_content", "coef"] - 0.15) < 0.01  # content 0.2 vs function 0.05
    assert abs(fit.loc["repeat_n", "coef"] - 0.03) < 0.005
    assert fit.loc["is_content", "ci_low"] < 0.15 < fit.loc["is_content", "ci_high"]
    assert abs(fit.loc["log_frequency", "coef"]) < 3 * fit.loc["log_frequency", "se"] + 1e-3
    assert "domain_prose" in fit.index  # domain fixed effects, one level dropped


def test_a_domain_ci_resamples_only_that_domain_and_counts_dropped_replicates() -> None:
    """A domain of 2 documents among 40: resampling all 40 leaves it out of ~13% of the replicates."""
    t = synthetic(n_docs=40, per_doc=10)
    t["domain"] = pd.Categorical(np.where(t["doc_id"] < 2, "rare", "common"))
    t.loc[t["doc_id"] == 0, "loss_h"] = t.loc[t["doc_id"] == 0, "loss_t"]  # gap 0 in doc 0...
    t.loc[t["doc_id"] == 1, "loss_h"] = t.loc[t["doc_id"] == 1, "loss_t"] - 1.0  # ...and 1 in doc 1
    one_doc = (t["doc_id"] == 5).to_numpy()
    masks = {"all": np.ones(len(t), bool), "one_doc": one_doc}
    per_domain = paired_gaps(t, masks, ["t", "h"], n_boot=2000, seed=0, by="domain").set_index(
        ["domain", "filter"]
    )
    rare = per_domain.loc[("rare", "all")]
    assert rare["dropped"] == 0 and rare["documents"] == 2
    assert np.isclose(rare["ci_low"], 0.0) and np.isclose(rare["ci_high"], 1.0)  # two documents: 0, 1/2 or 1
    overall = paired_gaps(t, masks, ["t", "h"], n_boot=2000, seed=0).set_index("filter")
    # a filter in 1 of 40 documents: a replicate misses it with probability (39/40)^40 ≈ 0.36
    assert 0.3 * 2000 < overall.loc["one_doc", "dropped"] < 0.42 * 2000 and overall.loc["all", "dropped"] == 0
    assert "dropped" in category_gaps(t, "upos", "t", "h", n_boot=50).columns
