"""Every eval YAML composes against its schema; a misspelt key fails at compose time."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from eval.config import EvalConfig, register_configs

CONF = Path(__file__).parents[2] / "conf"
register_configs()


@pytest.mark.parametrize("corpus", sorted(p.stem for p in (CONF / "corpus").glob("*.yaml")))
@pytest.mark.parametrize("filters", sorted(p.stem for p in (CONF / "filters").glob("*.yaml")))
def test_configs_compose(corpus: str, filters: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("eval", overrides=["models=[a,b]", f"corpus={corpus}", f"filters={filters}"])
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, EvalConfig) and obj.filters.use and obj.corpus.name


def test_typo_fails_at_compose_time() -> None:
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.raises(Exception, match="windw"),
    ):
        compose("eval", overrides=["models=[a]", "score.windw=5"])
