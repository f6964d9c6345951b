"""One prepared check of hybridzoo's CUDA path on a GPU machine that reaches no package index.

    bash scripts/device_check.sh [--quick] [--out device_report] [--only STEP ...] [--dry-run]

On the GPU machine (its image's own torch), `.whl/` (from `scripts/gather_device_wheels.sh`) is
unpacked into a temporary folder put first on PYTHONPATH, and the steps of `scripts/gpu_check/steps.py`
run in order, each in a subprocess with its own time limit: `pytest -m gpu`, fla vs torch for every
recurrent op, flex_attention vs SDPA, the 1B models' first-step loss against the CPU fp32 loss, 50
compiled bf16 steps of every tiny model, and the 1B throughput benchmark. `report.json` and
`summary.md` in `--out` are rewritten after every step. `--quick` runs the correctness steps only.
`--dry-run` (any machine) lists the steps with their limits and checks that each one's modules import
from a simulated image plus `.whl/`. Exit status: 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file: the project and scripts.gpu_check from this checkout

from models.errors import UserError, exit_on_user_error  # noqa: E402
from scripts.gpu_check.image import device_env, guarded_env, install_wheels  # noqa: E402
from scripts.gpu_check.report import Report  # noqa: E402
from scripts.gpu_check.runner import dry_run_problems, run_step  # noqa: E402
from scripts.gpu_check.steps import FULL_BUDGET_S, QUICK_BUDGET_S, select  # noqa: E402


def dry_run(steps, wheels: Path, work: Path) -> bool:
    """Print every step with its limit and what it would lack on the device; True when nothing."""
    site = work / "site"
    installed = install_wheels(wheels, site)
    print(f"{len(installed)} wheels from {wheels} unpacked; simulated image: scripts/gpu_check/image.py")
    env = guarded_env(site, ROOT, wheels / "sdists", work)
    problems = dry_run_problems(steps, env, site)
    for step in steps:
        print(f"{'FAIL' if problems[step.name] else 'ok  '} {step.name:<28} {step.limit_s:>4} s  {step.what}")
        for problem in problems[step.name]:
            print(f"       missing: {problem}")
    print(f"time limits add up to {sum(s.limit_s for s in steps)} s")
    return not any(problems.values())


def device_header(command: str) -> dict:
    """Device, versions and bf16 peak (train.metrics' table) for the report's first line."""
    import torch

    from train.metrics import gpu_peak_flops

    if not torch.cuda.is_available():
        raise UserError("no CUDA device is visible; run this on the GPU machine, or pass --dry-run here.")
    name = torch.cuda.get_device_name()
    peak = gpu_peak_flops(name)
    try:
        fla = metadata.version("fla-core")
    except metadata.PackageNotFoundError:
        fla = "missing"
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "fla": fla,
            "peak_tflops": None if peak is None else peak / 1e12, "command": command,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip


def device_run(steps, wheels: Path, out: Path, work: Path, budget_s: float, command: str) -> bool:
    """Run the steps within `budget_s` in all; the report is rewritten after each. True if all passed."""
    start = time.monotonic()
    site = work / "site"
    install_wheels(wheels, site)
    sys.path.insert(0, str(site))  # omegaconf (train.metrics) and fla-core's version for the header
    report = Report(out, device_header(command))
    env = device_env(site, ROOT, wheels / "sdists")
    for step in steps:
        left = budget_s - (time.monotonic() - start)
        result = run_step(step, env, out, min(step.limit_s, max(left, 1)))
        report.add(result)
        print(
            f"{result['status']:<10} {step.name:<28} {result['seconds']:>5.0f} s  {result.get('headline', '')}"
        )
    print(f"report: {out / 'summary.md'}")
    return all(s["status"] == "passed" for s in report.steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "device_report")
    parser.add_argument("--quick", action="store_true", help="the correctness steps only (<= 4 minutes)")
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run these steps only")
    parser.add_argument("--dry-run", action="store_true", help="list the steps; check their imports on a CPU")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="the gathered wheels")
    args = parser.parse_args()
    if not args.wheels.is_dir():
        raise UserError(
            f"--wheels {args.wheels} is not a folder; run `bash scripts/gather_device_wheels.sh`."
        )
    steps = select(args.quick, args.only)
    with tempfile.TemporaryDirectory(prefix="device_check_") as tmp:
        if args.dry_run:
            return 0 if dry_run(steps, args.wheels, Path(tmp)) else 1
        budget = QUICK_BUDGET_S if args.quick else FULL_BUDGET_S
        command = "bash scripts/device_check.sh " + " ".join(sys.argv[1:])
        return 0 if device_run(steps, args.wheels, args.out, Path(tmp), budget, command) else 1


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
