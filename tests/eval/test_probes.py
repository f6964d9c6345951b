"""Scored probes: generators are deterministic and build what they claim; scoring is exact (an oracle
scores 100%); zoo and local HF models run through every probe; too-long settings are skipped."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import Olmo3Config, Olmo3ForCausalLM, OlmoHybridConfig, OlmoHybridForCausalLM

from eval.probes import COLUMNS, SCORED, probe_module
from eval.probes.filler import DEFAULT_FILLER, FillerPool, filler_texts, prose_sentences
from eval.probes.run import plan, run_probes
from eval.probes.scored import _CACHE, DISTANCES, build_examples, evaluate_scored
from eval.score import LoadedModel, load_model
from train.data.demo_corpus import PYPI_KINDS

CPU = torch.device("cpu")
BRACKETS = {"(": ")", "[": "]", "{": "}", "<section>": "</section>", "\\begin{itemize}": "\\end{itemize}"}
SMALL = {"n_examples": 6, "distances": [16, 64]}


@pytest.fixture(scope="module")
def tokenizer(tokenizer_file) -> Tokenizer:
    return Tokenizer.from_file(str(tokenizer_file))


@pytest.fixture(scope="module", autouse=True)
def small_filler(tmp_path_factory):
    """A few of the interpreter's pydoc topics as the filler: offline, and quick to tokenize."""
    import pydoc_data.topics

    path = tmp_path_factory.mktemp("filler") / "filler.txt"
    path.write_text("\n".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)[:40]))
    SMALL["filler"] = str(path)


def examples(name: str, tokenizer: Tokenizer, **overrides):
    module = probe_module(name)
    settings = module.Settings(**{**SMALL, **overrides})
    return module, settings, build_examples(name, module.generate, module.VOCABULARY, settings, tokenizer)


def decode(tokenizer: Tokenizer, ids) -> str:
    return tokenizer.decode(list(map(int, ids)), skip_special_tokens=False)


@pytest.mark.parametrize("name", SCORED)
def test_examples_are_deterministic_per_seed(name: str, tokenizer) -> None:
    _, _, first = examples(name, tokenizer)
    _CACHE.clear()
    _, _, again = examples(name, tokenizer)
    _, _, other = examples(name, tokenizer, seed=1)
    assert [e.text for e in first] == [e.text for e in again]
    assert all(np.array_equal(a.prefix, b.prefix) for a, b in zip(first, again))
    assert [e.text for e in first] != [e.text for e in other]


@pytest.mark.parametrize("name", SCORED)
def test_distances_are_filler_tokens_of_the_models_tokenizer(name: str, tokenizer) -> None:
    module, settings, built = examples(name, tokenizer)
    assert [e.difficulty for e in built] == [
        d for d in settings.distances for _ in range(settings.n_examples)
    ]
    vocabulary = {w.lower() for w in module.VOCABULARY}
    for e in built:
        assert tokenizer.encode(e.text, add_special_tokens=False).ids == e.prefix[1:].tolist()
        assert e.prefix[0] == tokenizer.token_to_id(settings.prefix_token)
        filler = decode(tokenizer, e.prefix[e.filler_start : e.filler_start + e.difficulty])
        assert len(tokenizer.encode(filler, add_special_tokens=False).ids) == e.difficulty
        assert not vocabulary & {w.lower() for w in re.findall(r"[A-Za-z]+", filler)}
        for c in e.candidates:  # every candidate continues the same prefix, as the tokenizer splits it
            joint = tokenizer.encode(e.text + decode(tokenizer, c), add_special_tokens=False).ids
            assert joint == [*e.prefix[1:].tolist(), *c.tolist()]
    same = [e for e in built if e.example == 0]  # one template at every distance
    assert len({e.text[:20] for e in same}) == 1 and len({e.difficulty for e in same}) == len(
        settings.distances
    )


def _closers(text: str) -> list[str]:
    """Bracket stack after `text`: the closers still owed, innermost last; AssertionError on a mismatch."""
    pattern = "|".join(re.escape(t) for t in [*BRACKETS, *BRACKETS.values()])
    stack = []
    for token in re.findall(pattern, text):
        if token in BRACKETS:
            stack.append(BRACKETS[token])
        else:
            assert stack and stack.pop() == token, text
    return stack


def test_closure_answer_closes_the_one_open_bracket(tokenizer) -> None:
    _, _, built = examples("closure", tokenizer)
    for e in built:
        right = decode(tokenizer, e.candidates[e.answer])
        assert _closers(e.text) == [right]  # exactly one open delimiter, and the answer is its closer
        assert _closers(e.text + right) == []  # with it, everything nests
        for k, c in enumerate(e.candidates):
            if k != e.answer:
                with pytest.raises(AssertionError):
                    _closers(e.text + decode(tokenizer, c))


def test_pronoun_and_entity_answers_follow_from_the_intro(tokenizer) -> None:
    for e in examples("pronoun", tokenizer)[2]:
        people = dict(
            (role, pronoun)
            for _, role, pronoun in re.findall(r"(\w+) works as a (\w+), and (she|he)", e.text)
        )
        (role,) = re.findall(r"the (\w+) said that$", e.text)
        assert len(people) == 2 and decode(tokenizer, e.candidates[e.answer]) == " " + people[role]
    for e in examples("entity", tokenizer)[2]:
        holder = {obj: person for person, obj in re.findall(r"(\w+) has the (\w+)", e.text.split(".")[0])}
        (obj,) = re.findall(r"The (\w+) is with$", e.text)
        assert len(holder) == 3 and decode(tokenizer, e.candidates[e.answer]) == " " + holder[obj]


def test_copy_answer_is_the_rest_of_the_list(tokenizer) -> None:
    for e in examples("copy", tokenizer)[2]:
        (span,) = re.findall(r"^The code words are: ([\w, ]+)\.", e.text)
        (shown,) = re.findall(r"the code words are: ([\w, ]+),$", e.text)
        words, first = span.split(", "), shown.split(", ")
        assert words[: len(first)] == first
        assert decode(tokenizer, e.candidates[e.answer]) == " " + ", ".join(words[len(first) :]) + "."
        assert len({tuple(sorted(c.tolist())) for c in e.candidates}) == 1  # the same tokens, reordered


def test_filler_pool_draws_exact_lengths_and_drops_vocabulary(tokenizer) -> None:
    sentences = prose_sentences(
        ["The boat is near the bank. She said so (twice). It was a long and quiet day."], {"she"}
    )
    assert sentences == ["The boat is near the bank.", "It was a long and quiet day."]
    pool = FillerPool(sentences, tokenizer)
    for d in (1, 5, 17, 26):
        filler = pool.draw(np.random.default_rng(d), d)
        assert (
            len(filler.ids) == d and tokenizer.encode(filler.text, add_special_tokens=False).ids == filler.ids
        )
    with pytest.raises(ValueError, match="fewer than the distance"):
        pool.draw(np.random.default_rng(0), 10_000)


def oracle(built) -> LoadedModel:
    """A 'model' that reads each example's answer: high logits on the right candidate's tokens."""
    answers = {e.prefix.tobytes(): e.candidates[e.answer] for e in built}
    lengths = sorted({len(e.prefix) for e in built})
    vocab = 1 + max(int(c.max()) for e in built for c in e.candidates)

    def forward(ids: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*ids.shape, vocab)  # [B, T, V]
        for row, seq in enumerate(ids.numpy()):
            n = next(n for n in lengths if seq[:n].tobytes() in answers)
            right = answers[seq[:n].tobytes()][: len(seq) - n + 1]  # as much of it as this row predicts
            logits[row, torch.arange(n - 1, n - 1 + len(right)), torch.from_numpy(right)] = 20.0
        return logits

    return LoadedModel("oracle", None, "zoo", forward, vocab, None, "oracle")


@pytest.mark.parametrize("name", SCORED)
def test_an_oracle_scores_every_example_right(name: str, tokenizer) -> None:
    module, settings, built = examples(name, tokenizer)
    frame = evaluate_scored(name, module.generate, module.VOCABULARY, oracle(built), settings, tokenizer, CPU)
    assert len(frame) == len(built) and frame["correct"].all() and (frame["margin"] > 10).all()
    assert (frame["target_loss"] < 1e-3).all() and (frame["prediction"] == frame["answer"]).all()


def briefly_trained(path, tokenizer: Tokenizer, steps: int = 5) -> tuple[Path, float, float]:
    """The tiny zoo model at `path`, trained `steps` AdamW steps on probe-like text and saved in place;
    with its loss on that text before and after."""
    from models import load_pretrained, save_pretrained

    model = load_pretrained(path).train()
    text = "Anna works as a doctor, and she lives by the sea. The code words are: maple, harbor. " * 8
    ids = torch.tensor([tokenizer.encode(text).ids[:128]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps + 1):
        loss = torch.nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        losses.append(loss.item())
        if len(losses) <= steps:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    save_pretrained(model, str(path))
    return path, losses[0], losses[-1]


def check_frame(frame, probes: dict, models: list[str]) -> None:
    assert list(frame.columns[:8]) == ["model", *COLUMNS]
    for name, settings in probes.items():
        part = frame[frame["probe"] == name]
        assert len(part) == len(models) * settings["n_examples"] * len(settings["distances"])
        assert part["margin"].notna().all() and (part["target_loss"] > 0).all()
        assert (part["correct"] == (part["margin"] > 0)).all()
        assert set(part["setting"]) == {f"d={d}" for d in settings["distances"]}


def test_a_briefly_trained_zoo_model_runs_every_scored_probe(tmp_path, tiny_models, tokenizer) -> None:
    """The trained weights, not the untrained copy's, are what every probe scores."""
    path, before, after = briefly_trained(
        shutil.copytree(tiny_models["hybrid"], tmp_path / "hybrid"), tokenizer
    )
    assert after < before - 1.0  # five steps on one repeated text: it learned that text
    probes = {name: dict(SMALL) for name in SCORED}
    names = ["hybrid", "untrained", "transformer"]
    paths = [path, tiny_models["hybrid"], tiny_models["transformer"]]
    results = run_probes(plan(probes), names, paths, tokenizer, CPU, torch.float32, n_boot=50)
    check_frame(results.frame, probes, names)
    assert len(results.stats) == 3 * 4 * 2 and set(results.stats["n"]) == {6}
    assert len(results.differences) == 3 * 4 * 2 and not results.notes
    for probe in SCORED:
        rows = results.frame[results.frame["probe"] == probe]
        trained, untrained = (rows[rows["model"] == m]["margin"].to_numpy() for m in ("hybrid", "untrained"))
        assert not np.allclose(trained, untrained, atol=1e-3), probe


@pytest.mark.slow
def test_two_local_hf_models_run_every_scored_probe_and_skip_too_long_settings(tmp_path, tokenizer) -> None:
    common = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
              "num_attention_heads": 4, "pad_token_id": 1, "eos_token_id": 0}  # fmt: skip
    torch.manual_seed(0)
    Olmo3ForCausalLM(Olmo3Config(**common, max_position_embeddings=2048)).save_pretrained(tmp_path / "olmo3")
    hybrid = OlmoHybridConfig(**common, max_position_embeddings=300, linear_num_key_heads=2, linear_num_value_heads=2,
                              linear_key_head_dim=16, linear_value_head_dim=16)  # fmt: skip
    OlmoHybridForCausalLM(hybrid).save_pretrained(tmp_path / "hybrid")
    assert load_model(tmp_path / "hybrid", CPU, torch.float32).kind == "hf"
    probes = {name: {**SMALL, "distances": [16, 512]} for name in SCORED}
    results = run_probes(
        plan(probes),
        ["olmo3", "hybrid"],
        [tmp_path / "olmo3", tmp_path / "hybrid"],
        tokenizer,
        CPU,
        torch.float32,
        n_boot=50,
    )
    olmo3 = results.frame[results.frame["model"] == "olmo3"]
    check_frame(olmo3, probes, ["olmo3"])
    hybrid_rows = results.frame[results.frame["model"] == "hybrid"]
    assert set(hybrid_rows["difficulty"]) == {16} and len(hybrid_rows) == 4 * 6  # d=512 needs > 300 positions
    assert len(results.notes) == 4 and all("max_position_embeddings 300" in n for n in results.notes)
    assert set(results.differences["difficulty"]) == {16}  # pairs only where both models have the examples


def test_bad_probe_settings_name_the_key() -> None:
    with pytest.raises(ValueError, match="pronoun.*n_exampels"):
        plan({"pronoun": {"n_exampels": 3}})
    with pytest.raises(ValueError, match="unknown probe 'pronon'"):
        plan({"pronon": {}})


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "probes").glob("*.yaml"))
)
def test_probe_configs_compose_into_their_settings(name: str) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from eval.config import EvalConfig, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).parents[2] / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=["models=[a]", f"probes=[{name}]", "score.prefix_token=BOS"])
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, EvalConfig) and obj.corpus is None and list(obj.probes) == [name]
    module, settings = plan(obj.probes)[name]
    assert isinstance(settings, module.Settings)
    if name in SCORED:
        assert (
            settings.prefix_token == "BOS" and settings.n_examples >= 100 and settings.distances == DISTANCES
        )
        assert settings.filler == DEFAULT_FILLER


# sha256 of the default filler's kept sentences, one per line (docutils 0.21.2's prose)
DEFAULT_FILLER_SHA256 = "5bc891579bcf98dc1fa94bd27352b0c14c813be8838bb3c4b3ef4d39e16996cf"


def test_the_default_filler_is_the_same_pinned_prose_on_every_machine() -> None:
    """Not the interpreter's pydoc topics (they change with the Python version): a pinned sdist's prose."""
    assert DEFAULT_FILLER in PYPI_KINDS
    assert all(probe_module(name).Settings().filler == DEFAULT_FILLER for name in SCORED)
    sentences = prose_sentences(filler_texts(DEFAULT_FILLER), banned=set())
    assert len(sentences) > 2000
    assert hashlib.sha256("\n".join(sentences).encode()).hexdigest() == DEFAULT_FILLER_SHA256
