"""A config a user got wrong ends, at every Hydra entry point, in one `error:` line and exit status 1.

Hydra's own report is many lines (every option of a group, the config search path, "Set the
environment variable HYDRA_FULL_ERROR=1 ..."); `models.config_errors` turns it into one sentence
naming the key, the bad value and the closest valid ones. The apps run as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf.errors import ValidationError

import train.config
from models.config import CONF_DIR
from models.config_errors import config_error_sentence
from models.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

# (app, overrides, what the line must name: the key and bad value, and a close valid value)
CASES = {
    "unknown_model": ("train", ["model=tiny_hybird"], "model=tiny_hybird", "tiny_hybrid"),
    "unknown_logger": ("train", ["logger.name=nosuch"], "logger.name=nosuch", "wandb"),
    "misspelt_key": ("train", ["trainer.max_stepz=3"], "trainer.max_stepz", "trainer.max_steps"),
    "data_required": ("train", ["experiment=olmo_1b_comparison"], "data=NAME", "olmo_tokens_example"),
    "sweep_misspelt_key": ("train", ["-m", "model=tiny_rnn,tiny_hybrid", "trainer.precisio=fp32"],
                           "trainer.precisio", "trainer.precision"),
    "prepare_unknown_data": ("train.prepare", ["data=dmo"], "data=dmo", "demo"),
    "eval_misspelt_key": ("eval", ["score.windw=512"], "score.windw", "score.window"),
}  # fmt: skip


def run_app(app: str, overrides: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m APP overrides` from the repository root, writing only under tmp_path."""
    outputs = [f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    return subprocess.run(
        [sys.executable, "-m", app, *overrides, *outputs],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


def assert_one_error_line(done: subprocess.CompletedProcess, *named: str) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ") and "HYDRA_FULL_ERROR" not in lines[0]
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_a_bad_config_is_one_error_line_naming_key_value_and_closest(case: str, tmp_path: Path) -> None:
    app, overrides, bad, close = CASES[case]
    assert_one_error_line(run_app(app, overrides, tmp_path), bad, close)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "multirun.yaml"]
    assert not written  # nothing ran: no job's output, log or config


@pytest.mark.slow
def test_hydra_full_error_still_gives_hydras_own_report(tmp_path: Path) -> None:
    done = run_app("train", ["model=tiny_hybird"], tmp_path, HYDRA_FULL_ERROR="1")
    assert done.returncode == 1 and "MissingConfigException" in done.stderr
    assert "tiny_transformer_swa" in done.stderr  # Hydra's list of every model config


def composition_error(overrides: list[str]) -> Exception:
    train.config.register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"), pytest.raises(Exception) as caught:
        compose("train", overrides=overrides)
    return caught.value


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model=tiny_hybird"], "model=tiny_hybird: there is no such model config; the closest valid ones are "
                                "tiny_hybrid,"),
        (["trainer.precision=fp8"], "trainer.precision=fp8 is not a valid value; the closest valid values are "),
        (["model.mixers.atn.type=gdn"], "model.mixers.atn is not a config key; the closest valid keys are "
                                        "model.mixers.attn"),
        (["trainer.max_steps=abc"], "trainer.max_steps=abc: Value 'abc' of type 'str' could not be converted"),
        (["experiment=olmo_1b_comparison"], "data has no default in this config: add data=NAME"),
    ],
)  # fmt: skip
def test_each_kind_of_composition_error_is_one_sentence(overrides: list[str], expected: str) -> None:
    sentence = config_error_sentence(composition_error(overrides))
    assert sentence.startswith(expected) and "\n" not in sentence, sentence


def test_a_user_error_is_its_own_sentence_also_behind_omegaconf() -> None:
    assert config_error_sentence(UserError("model.mixers.attn has conv_size; drop it.")) == (
        "model.mixers.attn has conv_size; drop it."
    )
    try:
        try:
            raise UserError("a __post_init__ check.")
        except UserError:
            raise ValidationError("OmegaConf's wrapper") from None  # OmegaConf keeps only the context
    except ValidationError as wrapped:
        assert config_error_sentence(wrapped) == "a __post_init__ check."


def test_other_exceptions_are_bugs_and_keep_their_traceback() -> None:
    assert config_error_sentence(RuntimeError("a bug")) is None
    assert config_error_sentence(ValueError("a bug in torch")) is None
    try:
        try:
            raise UserError("handled")
        except UserError:
            raise RuntimeError("a bug while handling it")  # noqa: B904
    except RuntimeError as bug:
        assert config_error_sentence(bug) is None
