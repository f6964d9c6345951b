"""Every tiny architecture trains: 50 bf16 steps of compiled blocks on the demo corpus, loss falls.

The demo corpus is prepared once (about 120 kB of each domain, from the pinned sdists that
`scripts/gather_device_wheels.sh` puts into `.whl/sdists`), then every `conf/model/tiny_*.yaml`
trains at once, one `python -m train` each on the one GPU (compilation is CPU work, so running them
side by side saves most of the wall time). A run passes when its loss at step 50 lies at least
`MIN_DROP` below its loss at step 1 (tests/train/test_trainer.py's GPU test asks as much by step 30).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.gpu_check.result import StepResult, step_main

STEPS, MIN_DROP = 50, 1.0
CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
CAPS = [f"data.sources.{s}.max_bytes=120000" for s in ("prose", "books", "python", "html", "latex")]
CAPS.append("data.validation_fraction=0.5")


def train_command(
    model: str, data: Path, run: Path, device: str, precision: str, compile: bool, steps: int
) -> list[str]:
    return [
        sys.executable, "-m", "train", f"model={model}", "data=demo", f"data.path={data}", *CAPS,
        f"hydra.run.dir={run}", f"output_dir={run}", "logger=none", f"trainer.device={device}",
        f"trainer.precision={precision}", f"trainer.compile={str(compile).lower()}",
        f"trainer.max_steps={steps}", "trainer.seq_len=256", "trainer.micro_batch_size=8",
        "trainer.global_batch_tokens=2048", "trainer.log_interval=1", "trainer.eval_interval=0",
        "trainer.checkpoint_interval=0", "trainer.resume=never", "trainer.progress=false",
        "optim.lr=3e-3", "schedule.warmup_steps=5",
    ]  # fmt: skip


def losses(run: Path) -> dict[int, float]:
    path = run / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def train_all(models: list[str], root: Path, device: str = "cuda", precision: str = "bf16",
              compile: bool = True, steps: int = STEPS) -> list[dict]:  # fmt: skip
    """Prepare the corpus, train every model side by side; one row per model (tests: a CPU, fp32)."""
    data = root / "demo"
    prepare = [sys.executable, "-m", "train.prepare", "data=demo", f"data.path={data}", "progress=false",
               *CAPS, f"hydra.run.dir={root / 'prepare'}"]  # fmt: skip
    subprocess.run(prepare, check=True)
    runs = {m: root / m for m in models}
    commands = {m: train_command(m, data, run, device, precision, compile, steps) for m, run in runs.items()}
    logs = {m: (root / f"{m}.log").open("w") for m in models}
    processes = {
        m: subprocess.Popen(c, stdout=logs[m], stderr=subprocess.STDOUT) for m, c in commands.items()
    }
    rows = []
    for model, process in processes.items():
        process.wait()
        logs[model].close()
        output = (root / f"{model}.log").read_text().strip().splitlines() or [""]
        log = losses(runs[model])
        first, last = log.get(1), log.get(steps)
        ok = process.returncode == 0 and first is not None and last is not None and last < first - MIN_DROP
        rows.append({"model": model, "loss step 1": first, "loss at the end": last, "ok": ok,
                     "error": "" if process.returncode == 0 else output[-1]})  # fmt: skip
    return rows


def check() -> StepResult:
    with tempfile.TemporaryDirectory(prefix="tiny_training_") as tmp:
        rows = train_all(sorted(p.stem for p in CONF.glob("tiny_*.yaml")), Path(tmp))
    bad = [r["model"] for r in rows if not r["ok"]]
    headline = f"{len(rows) - len(bad)}/{len(rows)} tiny models' loss fell by > {MIN_DROP} in {STEPS} steps"
    return not bad, headline + (f"; not: {', '.join(bad)}" if bad else ""), rows


if __name__ == "__main__":
    step_main(check, __doc__)
