"""`python -m train.prepare`: every data config composes, typos fail early, the CLI runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from train.data.config import PrepareConfig, register_configs

ROOT = Path(__file__).resolve().parents[2]
DATA_CONFIGS = sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml"))


def compose_prepare(overrides: list[str]) -> PrepareConfig:
    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_object(compose("prepare", overrides=overrides))


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_every_data_config_composes(name):
    cfg = compose_prepare([f"data={name}"])
    assert cfg.data.name and (cfg.data.sources or cfg.data.synthetic is not None)  # text or a generated task
    weights = [s.weight for s in cfg.data.sources.values()]
    assert all(w is None for w in weights) or all(w is not None for w in weights)


@pytest.mark.parametrize(
    "override", ["data.sources.prose.domian=x", "data.validation_fraction=lots", "num_wrkers=2"]
)
def test_typos_fail_at_compose_time(override):
    with pytest.raises(ConfigCompositionException):
        compose_prepare(["data=demo", override])


def run_prepare(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "train.prepare",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        "progress=false",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def local_overrides(tmp_path: Path, glob: str) -> list[str]:
    return [
        "data=local_example",
        f"data.path={tmp_path / 'out'}",
        f"data.sources.notes.paths=[{glob}]",
        "~data.sources.code",
        "~data.sources.web",
        "data.tokenizer.vocab_size=300",
    ]


def test_cli_prepares_reuses_and_fails_cleanly(tmp_path):
    (tmp_path / "notes").mkdir()
    for i in range(30):
        (tmp_path / "notes" / f"{i}.txt").write_text(f"note {i}: " + "the river and the stone " * (i + 1))
    done = run_prepare(tmp_path, *local_overrides(tmp_path, f"{tmp_path}/notes/*.txt"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["sources"]["notes"]["train"]["documents"]
        + manifest["sources"]["notes"]["validation"]["documents"]
        == 30
    )
    again = run_prepare(tmp_path, *local_overrides(tmp_path, f"{tmp_path}/notes/*.txt"))
    assert again.returncode == 0 and "up to date" in again.stdout

    failed = run_prepare(
        tmp_path,
        *local_overrides(tmp_path, f"{tmp_path}/nothing/*.txt"),
        "data.path=" + str(tmp_path / "new"),
    )
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: source 'notes': no file matches"), failed.stderr
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))


DEMO_SMOKE_FINGERPRINT = "1a66e72ec64d444e456b3ba3903244db72d63c750a4c06601dbd3f8a8511628d"


def test_demo_config_smoke(tmp_path):
    """`data=demo` with small caps: all five domains, the real code path, a few seconds."""
    caps = [f"data.sources.{s}.max_bytes=150000" for s in ("prose", "books", "python", "html", "latex")]
    done = run_prepare(
        tmp_path, "data=demo", f"data.path={tmp_path / 'demo'}", "data.tokenizer.vocab_size=1024", *caps,
        "data.validation_fraction=0.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"prose", "books", "python", "html", "latex"}
    # The token data's fingerprint is a constant: the same on every machine with this lock.
    assert manifest["fingerprint"] == DEMO_SMOKE_FINGERPRINT
    assert manifest["tokenizer"]["vocab_size"] == 1024 and manifest["dtype"] == "uint16"
    assert all(
        s["validation"]["documents"] > 0 for s in manifest["sources"].values() if s["stats"]["documents"] > 1
    )
