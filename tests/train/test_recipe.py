"""The recipe: AdamW parameter groups and the LR schedules' shapes."""

from __future__ import annotations

import itertools

import pytest

from models import build_model, load_model_config
from train.recipe import (
    OptimConfig,
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
    lr_multiplier,
    parameter_groups,
)


def test_no_decay_on_norms_biases_and_embeddings() -> None:
    model = build_model(load_model_config("tiny_hybrid"))
    decay, no_decay = parameter_groups(model, OptimConfig())
    names = {id(p): n for n, p in model.named_parameters()}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert "embed.weight" in skipped and "norm.weight" in skipped and "blocks.0.mixer.A_log" in skipped
    assert "head.weight" not in skipped and "blocks.3.mixer.q_proj.weight" not in skipped
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 0.1
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    everything = parameter_groups(model, OptimConfig(decay_norms_and_biases=True, decay_embeddings=True))
    assert not everything[1]["params"]


@pytest.mark.parametrize("name", ["cosine", "wsd", "linear", "constant"])
def test_schedules_warm_up_then_follow_their_shape(name: str) -> None:
    cfg = ScheduleConfig(name=name, warmup_steps=10, min_lr_ratio=0.1, decay_fraction=0.2)
    curve = [lr_multiplier(step, cfg, 100) for step in range(100)]
    assert curve[0] == pytest.approx(0.1) and curve[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(curve[:10]))
    tail = curve[10:]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(tail))  # never rises after warmup
    if name == "constant":
        assert set(tail) == {1.0}
    elif name == "wsd":
        assert curve[79] == 1.0 and curve[99] == pytest.approx(0.1 + 0.9 / 20)
    else:
        assert curve[99] < 0.2 and curve[50] < 1.0


def test_scheduler_drives_the_optimizer_lr() -> None:
    model = build_model(load_model_config("tiny_transformer"))
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    scheduler = build_scheduler(optimizer, ScheduleConfig(name="linear", warmup_steps=4), max_steps=20)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    with pytest.raises(ValueError, match="schedule.name='triangle' is unknown"):
        ScheduleConfig(name="triangle")
