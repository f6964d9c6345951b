"""Synthetic tasks through the trainer: the same batches and losses on 1 and 2 ranks, exact resume."""

from __future__ import annotations

import pytest
from train_helpers import losses, records, run_train

PROBES = ["mqar", "parity"]


def probe_run(run, probe: str, *overrides: str, ranks: int = 1):
    done = run_train(run, run.parent / "unused", f"experiment=probe_{probe}", "model=tiny_hybrid",
                     "trainer.micro_batch_size=2", "trainer.eval_batches=1", *overrides, ranks=ranks, caps=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return losses(run)


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("probe", PROBES)
def test_two_ranks_see_the_same_batches_and_losses_as_one(tmp_path, probe: str) -> None:
    """Same first batch (sha256) and losses to 1e-5 relative (only the order of reductions differs):
    MQAR's answers are spread unevenly over the ranks, so this also checks that the loss is
    normalised by the global count of answers, not each rank's."""
    common = ["trainer.max_steps=3", "trainer.checkpoint_interval=0"]
    one = probe_run(tmp_path / "one", probe, *common)
    two = probe_run(tmp_path / "two", probe, *common, ranks=2)
    starts = [next(r for r in records(tmp_path / d) if r.get("event") == "start") for d in ("one", "two")]
    assert starts[0]["first_batch_sha256"] == starts[1]["first_batch_sha256"] and starts[1]["world_size"] == 2
    assert one.keys() == two.keys() == {1, 2, 3}
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("probe", PROBES)
def test_resuming_from_a_checkpoint_continues_bit_for_bit(tmp_path, probe: str) -> None:
    common = ["trainer.max_steps=6", "trainer.checkpoint_interval=3", "trainer.keep_last=2",
              "trainer.deterministic=true"]  # fmt: skip
    straight = probe_run(tmp_path / "straight", probe, *common)
    checkpoint = tmp_path / "straight" / "checkpoints" / "step_000003"
    resumed = probe_run(tmp_path / "resumed", probe, *common, f"trainer.resume={checkpoint}")
    assert resumed == {step: straight[step] for step in (4, 5, 6)}


def test_a_run_stops_at_the_first_evaluation_at_or_below_stop_at_val_loss(tmp_path) -> None:
    """Above any reachable loss the limit ends the run at its first evaluation (step 2 of 6), which
    is then exported with the steps it really took; at 0 (never reached) it runs all 6 steps."""
    common = ["trainer.max_steps=6", "trainer.eval_interval=2", "trainer.checkpoint_interval=0",
              "trainer.induction_eval=false"]  # fmt: skip
    probe_run(tmp_path / "stopped", "mqar", *common, "trainer.stop_at_val_loss=100")
    probe_run(tmp_path / "full", "mqar", *common, "trainer.stop_at_val_loss=0")
    stopped = records(tmp_path / "stopped")
    stop = next(r for r in stopped if r.get("event") == "early_stop")
    assert stop["step"] == 2 and stop["val/packed_loss"] <= 100
    assert max(r["step"] for r in stopped) == 2
    saved = (tmp_path / "stopped" / "final" / "config.yaml").read_text()
    assert "steps: 2\n" in saved
    full = records(tmp_path / "full")
    assert not any(r.get("event") == "early_stop" for r in full) and max(r["step"] for r in full) == 6
