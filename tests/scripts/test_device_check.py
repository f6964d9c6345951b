"""The GPU device check on a CPU: its dry run, its step runner and report, and the steps' own logic.

The dry run needs wheels of the packages the image lacks; `repacked_wheels` zips them from this
environment's installed copies (the packages `scripts/gather_device_wheels.sh` gathers), so no test
needs the network or a gathered `.whl/`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch

from models.errors import UserError
from scripts.gpu_check.report import Report
from scripts.gpu_check.runner import run_step
from scripts.gpu_check.steps import FULL_BUDGET_S, QUICK_BUDGET_S, STEPS, Step, select

ROOT = Path(__file__).resolve().parents[2]


def gathered_packages() -> list[str]:
    """The distributions `scripts/gather_device_wheels.sh` downloads (its PACKAGES line)."""
    text = (ROOT / "scripts" / "gather_device_wheels.sh").read_text()
    return re.search(r"^PACKAGES=\((.*)\)$", text, re.MULTILINE).group(1).split()


def repacked_wheels(folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """One wheel per gathered package, zipped from its installed files (scripts and caches left out)."""
    folder.mkdir()
    for name in gathered_packages():
        if name in leave_out:
            continue
        dist = metadata.distribution(name)
        with zipfile.ZipFile(
            folder / f"{name.replace('-', '_')}-{dist.version}-py3-none-any.whl", "w"
        ) as wheel:
            for file in dist.files:
                if file.parts[0] != ".." and "__pycache__" not in file.parts:
                    wheel.write(dist.locate_file(file), str(file))
    return folder


def device_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/device_check.sh", *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.slow
def test_dry_run_passes_with_the_gathered_packages_on_a_simulated_image(tmp_path: Path) -> None:
    """Every step is listed with its limit, and each one's imports and probes pass on image + wheels."""
    done = device_check("--dry-run", "--wheels", str(repacked_wheels(tmp_path / "whl")))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for step in STEPS:
        assert re.search(rf"^ok\s+{step.name}\s+{step.limit_s} s", done.stdout, re.MULTILINE), step.name
    assert f"time limits add up to {sum(s.limit_s for s in STEPS)} s" in done.stdout


@pytest.mark.slow
def test_dry_run_names_a_package_the_wheels_lack(tmp_path: Path) -> None:
    """Without omegaconf and fla-core in the wheels the simulated image must refuse them."""
    wheels = repacked_wheels(tmp_path / "whl", leave_out=("omegaconf", "fla-core"))
    done = device_check("--dry-run", "--wheels", str(wheels), "--only", "ops_agreement", "tiny_training")
    assert done.returncode == 1
    assert re.search(r"^FAIL\s+tiny_training", done.stdout, re.MULTILINE)
    assert "No module named 'omegaconf'" in done.stdout and "fla is not in .whl/" in done.stdout


@pytest.mark.slow
def test_a_run_without_cuda_stops_with_one_error_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the real check would start")
    (tmp_path / "whl").mkdir()
    done = device_check("--quick", "--wheels", str(tmp_path / "whl"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: no CUDA device is visible")


def test_step_limits_fit_the_run_budgets() -> None:
    assert sum(s.limit_s for s in STEPS) <= FULL_BUDGET_S
    assert sum(s.limit_s for s in STEPS if s.quick) <= QUICK_BUDGET_S
    assert len({s.name for s in STEPS}) == len(STEPS)
    assert [s.name for s in select(quick=True, only=None)] == [s.name for s in STEPS if s.quick]
    assert [s.name for s in select(quick=False, only=["bench_rnn_1b"])] == ["bench_rnn_1b"]
    with pytest.raises(UserError, match="--only \\['nope'\\] names no step"):
        select(quick=False, only=["nope"])


def _step(name: str, code: str) -> Step:
    return Step(name, 2, True, name, lambda out: [sys.executable, "-c", code, str(out)])


WRITE = "import json, sys; open(sys.argv[1], 'w').write(json.dumps({{'passed': {}, 'headline': 'h', 'rows': [{{'x': 1.5}}]}}))"


def test_runner_records_every_outcome_and_the_report_keeps_finished_steps(tmp_path: Path) -> None:
    """passed / failed from the step's JSON; a crash and a timeout from the runner; both report files
    are rewritten after each step, so the steps before a timeout stay recorded."""
    steps = [_step("good", WRITE.format(True)), _step("bad", WRITE.format(False)),
             _step("crash", "raise SystemExit('boom')"), _step("slow", "import time; time.sleep(60)")]  # fmt: skip
    header = {"device": "cpu", "torch": "t", "cuda": None, "fla": "f", "peak_tflops": None,
              "command": "c", "started": "s"}  # fmt: skip
    report = Report(tmp_path / "out", header)
    for step in steps:
        report.add(run_step(step, {}, tmp_path / "out", step.limit_s))
        saved = json.loads((tmp_path / "out" / "report.json").read_text())
        assert [s["name"] for s in saved["steps"]] == [s.name for s in steps[: len(saved["steps"])]]
    assert [s["status"] for s in saved["steps"]] == ["passed", "failed", "crashed (exit 1)", "timeout"]
    assert saved["steps"][2]["headline"] == "boom"
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| good | passed |" in summary and "| slow | timeout |" in summary
    assert "### good\n\n| x |\n|---|\n| 1.5 |" in summary
    assert not list((tmp_path / "out").glob("*.partial"))


@pytest.mark.parametrize("op", ["gated_delta_rule", "simple_gla", "gla"])
def test_ops_agreement_compares_outputs_states_and_gradients(op: str) -> None:
    """On a CPU the candidate is the token-by-token backend: every figure is tiny and the row agrees."""
    from scripts.gpu_check.ops_agreement import compare

    row = compare(op, packed=True, dtype=torch.float32, device="cpu", candidate="torch_recurrent")
    assert row["ok"] and max(row["output"], row["state"], row["grad (scaled)"]) < 1e-4, row


@pytest.mark.slow
def test_tiny_training_prepares_trains_side_by_side_and_reads_the_losses(tmp_path: Path) -> None:
    """The step's path on a CPU (fp32, eager, 3 steps, two models at once): both runs' first and
    last losses are read back, and `ok` is the loss-fall rule on them."""
    from scripts.gpu_check.tiny_training import MIN_DROP, train_all

    rows = train_all(["tiny_transformer", "tiny_rnn"], tmp_path, "cpu", "fp32", compile=False, steps=3)
    assert [r["model"] for r in rows] == ["tiny_transformer", "tiny_rnn"]
    for row in rows:
        assert row["error"] == "" and row["loss step 1"] > 0 and row["loss at the end"] > 0, row
        assert row["ok"] == (row["loss at the end"] < row["loss step 1"] - MIN_DROP)


def test_first_step_loss_row_agrees_on_a_cpu() -> None:
    """CPU fp32 vs CPU bf16 autocast of the tiny transformer (the GDN torch path has no CPU bf16
    triangular solve, so the recurrent models are compared on the GPU only)."""
    from scripts.gpu_check.first_step_loss import compare

    row = compare("tiny_transformer", device="cpu")
    assert row["ok"] and 0 < row["rel diff"] < 1e-2 and row["cpu fp32"] > 5, row


def test_device_run_keeps_the_whole_run_within_its_budget(tmp_path: Path, monkeypatch) -> None:
    """A step is cut at what is left of the run's budget, not only at its own limit."""
    import scripts.device_check as device_check_module

    monkeypatch.setattr(device_check_module, "device_header", lambda command: {
        "device": "cpu", "torch": "t", "cuda": None, "fla": "f", "peak_tflops": None, "command": command,
        "started": "s"})  # fmt: skip
    steps = [_step("good", WRITE.format(True)), _step("slow", "import time; time.sleep(60)")]
    (tmp_path / "whl").mkdir()
    ok = device_check_module.device_run(steps, tmp_path / "whl", tmp_path / "out", tmp_path, 1.0, "c")
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert not ok and [s["status"] for s in saved["steps"]] == ["passed", "timeout"]
    assert saved["steps"][1]["seconds"] < saved["steps"][1]["limit_s"]
