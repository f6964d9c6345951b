"""The training loop: learning, exact resume, preemption, and bad configs — on CPU, in subprocesses."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import torch
from train_helpers import losses, records, run_train, run_train_as_slurm_tasks, train_command

from eval.inloop import FilteredLoss
from models import load_pretrained


@pytest.mark.slow
@pytest.mark.parametrize(
    "model", ["tiny_transformer", "tiny_hybrid", "tiny_rnn", "tiny_mamba2", "tiny_gla", "tiny_deltanet"]
)
def test_each_architecture_learns_the_demo_corpus(tmp_path, demo_data, model: str) -> None:
    run = tmp_path / "run"
    done = run_train(run, demo_data, f"model={model}", "trainer.max_steps=60", "optim.lr=3e-3",
                     "schedule.warmup_steps=5", "trainer.checkpoint_interval=0", "trainer.eval_batches=4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = records(run)
    start = next(r for r in log if r.get("event") == "start")
    first_loss, val_loss = losses(run)[1], log[-2]["val/packed_loss"]
    assert first_loss > 8.5  # ln(8192) = 9.01 at init
    # clearly learned, far beyond step-to-step noise (~0.05): 60 steps of 1k tokens on the five-domain
    # demo corpus bring every architecture 1.3-1.5 nats below the uniform 9.01
    assert val_loss < first_loss - 1.0, (first_loss, val_loss)
    assert len(start["first_batch_sha256"]) == 64
    model_out = load_pretrained(run / "final")
    assert model_out.cfg.name == model and (run / "final" / "tokenizer.json").is_file()


def test_snapshots_give_eval_a_pretrained_dir_per_checkpoint(tmp_path, demo_data) -> None:
    run = tmp_path / "run"
    done = run_train(
        run, demo_data, "trainer.max_steps=4", "trainer.checkpoint_interval=2", "trainer.snapshots=true"
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step_000002", "step_000004"]
    early, final = load_pretrained(run / "snapshots" / "step_000002"), load_pretrained(run / "final")
    assert not torch.equal(early.head.weight, final.head.weight)
    assert torch.equal(load_pretrained(run / "snapshots" / "step_000004").head.weight, final.head.weight)


def test_every_architecture_sees_the_same_first_batch(tmp_path, demo_data) -> None:
    hashes = set()
    for model in ("tiny_transformer", "tiny_rnn"):
        done = run_train(tmp_path / model, demo_data, f"model={model}", "trainer.max_steps=1")
        assert done.returncode == 0, done.stderr
        hashes.add(records(tmp_path / model)[0]["first_batch_sha256"])
    assert len(hashes) == 1


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("launcher", ["torchrun", "slurm"])
def test_two_fsdp2_ranks_match_one_rank(tmp_path, demo_data, launcher: str) -> None:
    """FSDP2 over 2 gloo ranks vs the plain module: same losses to 1e-5 relative (fp32; only the
    order of floating-point reductions differs). The ranks come from torchrun, or from SLURM's
    variables the way `srun` / the submitit launcher start them."""
    common = [
        "model=tiny_hybrid",
        "trainer.max_steps=4",
        "trainer.micro_batch_size=2",
        "trainer.checkpoint_interval=2",
    ]
    one = run_train(tmp_path / "one", demo_data, *common)
    if launcher == "torchrun":
        two = run_train(tmp_path / "two", demo_data, *common, ranks=2)
    else:
        two = run_train_as_slurm_tasks(tmp_path / "two", demo_data, *common, tasks=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert [r["world_size"] for r in records(tmp_path / "two") if r.get("event") == "start"] == [2]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert a.keys() == b.keys() == {1, 2, 3, 4}
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-5)
    assert (tmp_path / "two" / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path, demo_data) -> None:
    common = [
        "model=tiny_hybrid",
        "trainer.max_steps=10",
        "trainer.checkpoint_interval=3",
        "trainer.deterministic=true",
    ]
    done = run_train(tmp_path / "straight", demo_data, *common)
    assert done.returncode == 0, done.stderr
    reference = losses(tmp_path / "straight")

    run = tmp_path / "killed"
    process = subprocess.Popen(
        train_command(run, demo_data, common), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints" / "step_000006").exists():
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert (run / "checkpoints" / "step_000006").exists()
    resumed = run_train(run, demo_data, *common)
    assert resumed.returncode == 0, resumed.stderr
    assert any(r.get("event") == "resumed" for r in records(run))
    assert losses(run) == reference  # bit-exact: fp32, deterministic, same batches


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path, demo_data) -> None:
    run = tmp_path / "run"
    common = ["model=tiny_transformer", "trainer.max_steps=400", "trainer.checkpoint_interval=0"]
    process = subprocess.Popen(
        train_command(run, demo_data, common), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and len(losses(run)) >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 75
    saved = sorted((run / "checkpoints").glob("step_*"))
    assert len(saved) == 1
    step = int(saved[0].name.split("_")[1])
    done = run_train(
        run, demo_data, *common[:1], f"trainer.max_steps={step + 2}", "trainer.checkpoint_interval=0"
    )
    assert done.returncode == 0, done.stderr
    assert max(losses(run)) == step + 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model=tiny_mamba"],
            "model=tiny_mamba: there is no such model config; the closest valid ones are tiny_mamba2",
        ),
        (["trainer.global_batch_tokens=1000"], "not a multiple of seq_len"),
        (["trainer.micro_batch_size=3"], "does not split into micro-batches"),
        (["model.vocab_size=1000"], "model vocab_size 1000 is smaller"),
        (
            ["trainer.precision=fp8"],
            "trainer.precision=fp8 is not a valid value; the closest valid values are",
        ),
        (["trainer.max_tokens=100"], "exactly one of trainer.max_steps"),
    ],
)
def test_bad_configs_fail_with_one_clear_line(
    tmp_path, demo_data, overrides: list[str], message: str
) -> None:
    done = run_train(tmp_path / "run", demo_data, "trainer.max_steps=1", *overrides)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_data_fails_with_one_clear_line(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    done = run_train(tmp_path / "run", missing, "data=local_example", "trainer.max_steps=1", caps=False)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error:") and done.stderr.strip().count("\n") == 0, done.stderr


@pytest.mark.slow
def test_nan_loss_stops_without_touching_the_last_checkpoint(tmp_path, demo_data) -> None:
    run = tmp_path / "run"
    done = run_train(run, demo_data, "trainer.max_steps=2", "trainer.checkpoint_interval=2")
    assert done.returncode == 0, done.stderr
    before = {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints" / "step_000002").iterdir()}
    # An infinite learning rate makes the weights non-finite after one update: the next loss is NaN.
    blown = run_train(run, demo_data, "trainer.max_steps=6", "optim.lr=inf", "trainer.resume=never")
    assert blown.returncode == 1, blown.stderr
    assert blown.stderr.strip().startswith("error: loss is nan at step"), blown.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints" / "step_000002").iterdir()}
    assert after == before


def test_wandb_offline_logs_beside_metrics_jsonl(tmp_path, demo_data) -> None:
    run = tmp_path / "run"
    done = run_train(run, demo_data, "trainer.max_steps=2", "logger=wandb", "logger.mode=offline")
    assert done.returncode == 0, done.stderr
    assert list((run / "wandb").glob("offline-run-*")), "no offline wandb run written"
    assert sorted(losses(run)) == [1, 2]


def test_filtered_validation_losses_are_logged_in_the_loop(tmp_path, demo_data) -> None:
    """Each logged `val/loss/<filter>` is what the same filters give, computed outside the loop, on
    the weights of that step (its pretrained snapshot) and the run's validation documents (two per
    domain, cut to 3000 characters, to keep the test short)."""
    run, filters = tmp_path / "run", ["all", "content", "function"]
    documents = {"max_docs_per_domain": 2, "max_chars_per_doc": 3000}
    callback = (f"trainer.callbacks=[{{_target_:eval.inloop.FilteredLossCallback,filters:[{','.join(filters)}],"
                f"window:64,max_docs_per_domain:2,max_chars_per_doc:3000}}]")  # fmt: skip
    done = run_train(run, demo_data, "trainer.max_steps=2", "trainer.eval_interval=1", "trainer.checkpoint_interval=1",
                     "trainer.snapshots=true", callback)  # fmt: skip
    assert done.returncode == 0, done.stderr
    evals = [r for r in records(run) if "val/loss/content" in r]
    assert [r["step"] for r in evals] == [1, 2, 2]  # every eval_interval, and at the end
    offline = FilteredLoss.from_dataset(str(demo_data), filters=filters, window=64, **documents)
    for r in evals:
        expected = offline(load_pretrained(run / "snapshots" / f"step_{r['step']:06d}"))
        assert {k: r[k] for k in expected} == pytest.approx(expected, abs=1e-5), r["step"]
        assert r["val/loss/all"] != r["val/packed_loss"]  # per-document windows vs packed rows
    assert evals[0]["val/loss/all"] != evals[1]["val/loss/all"]  # the step's own weights


def test_document_masking_trains_and_differs_from_plain_packing(tmp_path, demo_data) -> None:
    common = ["model=tiny_hybrid", "trainer.max_steps=2", "trainer.checkpoint_interval=0", "trainer.seq_len=512",
              "trainer.global_batch_tokens=8192", "trainer.micro_batch_size=16"]  # fmt: skip
    plain = run_train(tmp_path / "plain", demo_data, *common)
    masked = run_train(tmp_path / "masked", demo_data, *common, "trainer.doc_masking=true")
    assert plain.returncode == 0, plain.stderr
    assert masked.returncode == 0, masked.stderr
    a, b = losses(tmp_path / "plain"), losses(tmp_path / "masked")
    # 16 x 512 tokens of the demo corpus hold document boundaries: the trainer passes doc_ids, so the
    # same batch with and without attention/recurrence across them gives a different, but close, loss.
    assert a[1] != b[1] and abs(a[1] - b[1]) < 0.5
    # What masking means, on the trained hybrid (attention and Gated DeltaNet layers): the second
    # document's outputs do not depend on the first document's content with doc_ids, and do without.
    model = load_pretrained(tmp_path / "masked" / "final").eval()
    generator = torch.Generator().manual_seed(0)
    first, other_first, second = (torch.randint(1, 8192, (n,), generator=generator) for n in (40, 40, 30))
    doc_ids = torch.tensor([[0] * 40 + [1] * 30])
    with torch.no_grad():
        rows = [torch.cat([head, second])[None] for head in (first, other_first)]
        masked_out = [model(row, doc_ids=doc_ids)[0, 40:] for row in rows]
        plain_out = [model(row)[0, 40:] for row in rows]
    assert torch.allclose(*masked_out, atol=1e-5)
    assert (plain_out[0] - plain_out[1]).abs().max() > 1e-2


@pytest.mark.slow
def test_compiled_and_checkpointed_blocks_train_like_plain_ones(tmp_path, demo_data) -> None:
    common = ["model=tiny_hybrid", "trainer.max_steps=3", "trainer.checkpoint_interval=0"]
    plain = run_train(tmp_path / "plain", demo_data, *common)
    fancy = run_train(
        tmp_path / "fancy",
        demo_data,
        *common,
        "trainer.compile=true",
        "trainer.activation_checkpointing=true",
    )
    assert plain.returncode == 0, plain.stderr
    assert fancy.returncode == 0, fancy.stderr
    a, b = losses(tmp_path / "plain"), losses(tmp_path / "fancy")
    assert a.keys() == b.keys() == {1, 2, 3}
    for step in a:  # same math; compiled kernels may reassociate sums (fp32)
        assert b[step] == pytest.approx(a[step], rel=1e-4)
    reloaded = load_pretrained(tmp_path / "fancy" / "final")  # clean parameter names despite the wrappers
    assert reloaded.cfg.name == "tiny_hybrid"


@pytest.mark.slow
def test_compiled_blocks_with_document_masking_train_like_eager(tmp_path, demo_data) -> None:
    """trainer.compile with doc_masking: the Packing built once per forward crosses the compiled
    blocks (the packed gated delta rule runs eagerly inside them), and the losses equal eager's."""
    common = ["model=tiny_hybrid", "trainer.max_steps=3", "trainer.checkpoint_interval=0", "trainer.seq_len=256",
              "trainer.global_batch_tokens=4096", "trainer.micro_batch_size=8", "trainer.doc_masking=true"]  # fmt: skip
    eager = run_train(tmp_path / "eager", demo_data, *common)
    compiled = run_train(tmp_path / "compiled", demo_data, *common, "trainer.compile=true")
    assert eager.returncode == 0, eager.stderr
    assert compiled.returncode == 0, compiled.stderr
    a, b = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert a.keys() == b.keys() == {1, 2, 3}
    for step in a:  # inductor may reorder fp32 sums (norms, SwiGLU): measured <= 1.1e-7 relative
        assert b[step] == pytest.approx(a[step], rel=1e-5)


def test_bf16_autocast_trains_close_to_fp32(tmp_path, demo_data) -> None:
    """precision=bf16 on one CPU rank (autocast; the fused loss runs its head matmuls in bf16, the
    softmax in fp32): over 8 steps that take the loss down by more than a nat, bf16's losses stay
    within 0.01 nats of fp32's at every step (measured: at most 0.002), and the z-loss is logged."""
    common = ["model=tiny_transformer", "trainer.max_steps=8", "trainer.checkpoint_interval=0", "optim.lr=3e-3",
              "schedule.warmup_steps=2"]  # fmt: skip
    fp32 = run_train(tmp_path / "fp32", demo_data, *common)
    bf16 = run_train(tmp_path / "bf16", demo_data, *common, "trainer.precision=bf16")
    assert fp32.returncode == 0, fp32.stderr
    assert bf16.returncode == 0, bf16.stderr
    a, b = losses(tmp_path / "fp32"), losses(tmp_path / "bf16")
    assert a.keys() == b.keys() == set(range(1, 9))
    assert a[8] < a[1] - 1.0 and b[8] < b[1] - 1.0  # both really trained
    for step in a:
        assert b[step] != a[step] and abs(b[step] - a[step]) < 0.01, (step, a[step], b[step])
    assert all(r["z_loss"] > 0 for r in records(tmp_path / "bf16") if "z_loss" in r)


@pytest.mark.gpu
def test_cuda_bf16_compiled_training_learns(tmp_path, demo_data) -> None:
    """On a GPU: bf16 (autocast), compiled blocks, fla's kernels and the fused loss train the hybrid."""
    run = tmp_path / "cuda"
    done = run_train(run, demo_data, "model=tiny_hybrid", "trainer.device=cuda", "trainer.precision=bf16",
                     "trainer.compile=true", "trainer.max_steps=30", "optim.lr=3e-3", "schedule.warmup_steps=3",
                     "trainer.checkpoint_interval=0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = losses(run)
    assert log[30] < log[1] - 1.0, log
    assert all(r["peak_memory_gb"] > 0 for r in records(run) if "peak_memory_gb" in r)
